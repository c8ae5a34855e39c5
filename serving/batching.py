"""Request batching: comments that arrive within a few milliseconds of each other share one forward pass.

Without it, each server thread runs its own forward pass at batch 1, and with 8 concurrent
requests 8 passes compete for the same cores. A pass over 8 short comments costs far less than
8 passes over one, because the matrix products get wider while the per-pass overheads (Python,
kernel launches, the thread team waking up) stay the same. The design, as in NVIDIA Triton's
"dynamic batcher" and TorchServe's ``max_batch_delay``:

* **one bounded queue.** A request thread puts its texts in and waits for its own answer. When
  the queue is full (``max_queue`` requests waiting) the request is refused at once with HTTP 503
  and ``Retry-After: 1``, instead of piling up until every client times out;
* **one worker thread** takes the oldest request, then keeps taking requests until the batch
  holds ``max_batch_size`` texts or ``max_wait_ms`` have passed since it took the first one, and
  runs ``Predictor.predict`` (webapp/app.py) once on all of them. A request that would overflow
  the batch waits for the next one; a request never shares its texts between two passes;
* **each answer goes back to its own caller**: the worker slices the batch's results in the
  order it took the requests and hands each slice to the request it came from.

Since only the worker runs the model, each pass can use every core (PyTorch's default threads)
without passes fighting over them. The price is latency: a lone request waits up to
``max_wait_ms`` for company. bench/serving.py measures both sides.

It is on by default where the model runs on a GPU, and off on a CPU (``on_by_default``).
"""
import queue
import threading
import time
from dataclasses import dataclass

import bottle
import torch

BUSY = "The server is busy with other requests. Please try again in a moment."


@dataclass(frozen=True)
class BatchSettings:
    max_batch_size: int = 32  # texts per forward pass
    max_wait_ms: float = 2.0  # how long the first request of a batch waits for others
    max_queue: int = 256  # requests waiting, beyond which new ones are refused

    def __post_init__(self):
        if self.max_batch_size < 1 or self.max_wait_ms < 0 or self.max_queue < 1:
            raise ValueError(f"batching needs max_batch_size >= 1, max_wait_ms >= 0 and max_queue >= 1, "
                             f"got {self}")


class _Request:
    """One caller's texts, and the place where the worker leaves its answer."""

    def __init__(self, texts: list[str]):
        self.texts = texts
        self.results: list[dict] | None = None
        self.error: BaseException | None = None
        self.done = threading.Event()


class BatchingPredictor:
    """A ``Predictor`` whose concurrent ``predict`` calls are served by one worker in shared passes.

    Everything else (``name``, ``threshold``, options of ``predict`` other than the texts) is the
    wrapped predictor's: a call with options runs directly, outside the batches.
    """

    def __init__(self, predictor, settings: BatchSettings = BatchSettings()):
        self.predictor = predictor
        self.settings = settings
        self.forward_passes = 0  # how many passes served how many requests: read by tests and /health
        self.requests_served = 0
        self._queue: queue.Queue[_Request] = queue.Queue(maxsize=settings.max_queue)
        self._worker = threading.Thread(target=self._serve_forever, name=f"batching-{predictor.name}",
                                        daemon=True)
        self._worker.start()

    def __getattr__(self, name: str):
        return getattr(self.predictor, name)

    def predict(self, texts: list[str], **options) -> list[dict]:
        """``Predictor.predict(texts)``, computed in a pass shared with other callers' texts."""
        if options:
            return self.predictor.predict(texts, **options)
        if not isinstance(texts, list) or not all(isinstance(text, str) for text in texts):
            raise TypeError("predict expects a list of strings")
        if not texts:
            return []
        request = _Request(texts)
        try:
            self._queue.put_nowait(request)
        except queue.Full:  # the server answers as fast as it can: this request must come back later
            raise bottle.HTTPError(503, BUSY, **{"Retry-After": "1"}) from None
        request.done.wait()
        if request.error is not None:
            raise request.error
        return request.results

    def _serve_forever(self) -> None:
        waiting: _Request | None = None  # taken from the queue, but too large for the last batch
        while True:
            first = waiting or self._queue.get()
            batch, size, waiting = [first], len(first.texts), None
            deadline = time.monotonic() + self.settings.max_wait_ms / 1000
            while size < self.settings.max_batch_size:
                remaining_s = deadline - time.monotonic()
                try:
                    request = self._queue.get(timeout=remaining_s) if remaining_s > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if size + len(request.texts) > self.settings.max_batch_size:
                    waiting = request
                    break
                batch.append(request)
                size += len(request.texts)
            self._run(batch)

    def _run(self, batch: list[_Request]) -> None:
        """One forward pass for the whole batch; each request gets its own slice of the results."""
        try:
            results = self.predictor.predict([text for request in batch for text in request.texts])
        except Exception as error:  # noqa: BLE001 - handed to every caller of this batch
            for request in batch:
                request.error = error
                request.done.set()
            return
        start = 0
        for request in batch:
            request.results = results[start:start + len(request.texts)]
            start += len(request.texts)
            request.done.set()
        self.forward_passes += 1
        self.requests_served += len(batch)


def on_by_default() -> bool:
    """Whether the web app batches requests when not told: where it serves on a GPU (CUDA), not on a CPU.

    A forward pass over one comment leaves most of a GPU idle, so a shared pass serves many
    requests for the time of one. On a CPU a pass at batch 1 already keeps its core busy with
    matrix products; without batching each request thread runs its own single-threaded pass, and
    concurrent requests fill every core with useful work. A shared pass adds the padding of its
    shorter comments and the wait for company, and on 2 cores that cost more than it saved
    (bench/RESULTS.md, *Serving*: requests/s with 8 clients, batching on against off).
    """
    return torch.cuda.is_available()


def with_batching(predictors: dict, settings: BatchSettings | None) -> dict:
    """Each predictor wrapped in its own ``BatchingPredictor``; unchanged when ``settings`` is None."""
    if settings is None:
        return predictors
    return {name: BatchingPredictor(predictor, settings) for name, predictor in predictors.items()}
