"""The full server: ``python -m webapp`` with flags, or any WSGI server on ``serving.wsgi:app`` with DVL_* variables.

Both build the same app (``serving_app``): the core app of webapp/app.py over the served run and the
compare view's runs (serving/runs.py), each at its precision (serving/precision.py), the served run
exported for ONNX Runtime on first serve (serving/export_onnx.py), request batching where it pays
(serving/batching.py), word explanations (serving/explain.py), and ``GET /health``.
"""
import argparse
import os
import sys
from pathlib import Path

import bottle
import torch
import waitress

from models.load import ModelError
from serving.batching import BatchSettings, on_by_default, with_batching
from serving.explain import explain
from serving.export_onnx import export_for_serving
from serving.precision import PRECISIONS
from serving.runs import load_predictors, resolve_model_folder
from webapp.app import MAX_BODY_BYTES, make_app

# waitress reads a whole request before the app sees it; past this size it refuses the request
# itself, so an absurd upload never even fills a temporary file. Up to it the app answers with
# its own 413 message.
WAITRESS_MAX_BODY_BYTES = 4 * MAX_BODY_BYTES
# waitress stops accepting new connections once it holds connection_limit (default 100) and drops an idle one
# only after channel_timeout (default 120 s), so 100 silent sockets lock everyone out for two minutes. 500 stays
# well under the usual 1,024 open files of a process; 30 s still lets a slow client send a full form.
CONNECTION_LIMIT, CHANNEL_TIMEOUT_S = 500, 30


def serving_app(model_folder: str | Path, *, threshold: float | None = None, runs_dir: str | Path | None = None,
                precision: str = "auto", batching: BatchSettings | None = None,
                torch_threads: int | None = None) -> tuple[bottle.Bottle, dict, str]:
    """The app, its predictors by name (unbatched) and the served one's name; a ModelError says what is wrong.

    The served run is exported for ONNX Runtime first, once, where the precision may run an export
    (``auto`` on a CPU, ``onnx``, ``int8``) and it has no fresh one: so a fresh clone serves what
    bench/serving.py measured fastest. The compare view's runs use an export only where one exists.
    """
    set_serving_threads(torch_threads, batching=batching is not None)
    if precision in ("onnx", "int8") or precision == "auto" and not torch.cuda.is_available():
        export_for_serving(model_folder)
    predictors, served = load_predictors(model_folder, threshold=threshold, runs_dir=runs_dir, precision=precision)
    app = make_app(with_batching(predictors, batching), served, explain=explain)
    app.get("/health", callback=lambda: {"status": "ok", "model": served, "models": list(predictors),
                                         "precision": predictors[served].precision})
    return app, predictors, served


def set_serving_threads(torch_threads: int | None, batching: bool) -> None:
    """Give each forward pass ``torch_threads`` cores (default: all of them with batching, else 1).

    With request batching one worker thread runs every forward pass, so each pass can use every
    core (PyTorch's default). Without it, a server runs one forward pass per request thread:
    with PyTorch's default, eight concurrent requests would start eight teams of one thread per
    core on the same cores and slow each other down, so each pass gets one thread and the
    request threads share the cores instead. bench/serving.py measures both. ONNX Runtime sessions
    take the same count when they are made.
    """
    if torch_threads is not None:
        torch.set_num_threads(torch_threads)
    elif not batching:
        torch.set_num_threads(1)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m webapp", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="run folder to serve (default: best run in --results)")
    parser.add_argument("--threshold", type=float,
                        help="decision threshold (default: the run's validation_threshold)")
    parser.add_argument("--results", default="results/results.json",
                        help="evaluate.py's results, used to pick the default model")
    parser.add_argument("--runs-dir", default="runs", help="trained runs shown by the compare view")
    parser.add_argument("--no-compare", action="store_true",
                        help="load only the served model (faster start, less memory)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--server", choices=("waitress", "bottle"), default="waitress",
                        help="waitress (multi-threaded, for deployment) or bottle (single-threaded, local)")
    parser.add_argument("--threads", type=int, default=32,
                        help="waitress worker threads: requests in progress at once (default 32)")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="fp32, bf16, onnx or int8 (ONNX Runtime on the run's export), or auto: int8 where the "
                             "export measured it within 0.001 validation ROC-AUC of fp32, else onnx, on a CPU, else "
                             "bf16 where the hardware has it, else fp32. The served run is exported on first serve "
                             "(serving/precision.py)")
    batching = parser.add_argument_group("request batching (serving/batching.py)")
    batching.add_argument("--batching", choices=("auto", "on", "off"), default="auto",
                          help="share forward passes among concurrent requests: on, off (one pass per request, in "
                               "the request's own thread), or auto: on with a GPU, off on a CPU (default)")
    batching.add_argument("--max-batch-size", type=int, default=BatchSettings.max_batch_size,
                          help="texts per shared forward pass (default %(default)s)")
    batching.add_argument("--max-wait-ms", type=float, default=BatchSettings.max_wait_ms,
                          help="how long a request waits for others to share its pass (default %(default)s)")
    batching.add_argument("--max-queue", type=int, default=BatchSettings.max_queue,
                          help="requests waiting before new ones get 503 (default %(default)s)")
    parser.add_argument("--torch-threads", type=int,
                        help="intra-op threads per forward pass (default: all cores with batching, 1 without; "
                             "see set_serving_threads)")
    args = parser.parse_args(argv)
    try:
        batching = args.batching == "on" or (args.batching == "auto" and on_by_default())
        args.batching = BatchSettings(args.max_batch_size, args.max_wait_ms, args.max_queue) if batching else None
    except ValueError as error:
        parser.error(str(error))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        app, predictors, served = serving_app(
            resolve_model_folder(args.model, args.results), threshold=args.threshold,
            runs_dir=None if args.no_compare else args.runs_dir, precision=args.precision,
            batching=args.batching, torch_threads=args.torch_threads)
    except ModelError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    batching = (f"batching up to {args.batching.max_batch_size} texts within {args.batching.max_wait_ms:g} ms"
                if args.batching else "no batching")
    print(f"serving {served} (threshold {predictors[served].threshold:.3f}, {predictors[served].precision}, "
          f"{batching}); compare view: {', '.join(predictors)}", flush=True)
    if args.server == "waitress":
        waitress.serve(app, host=args.host, port=args.port, threads=args.threads,
                       max_request_body_size=WAITRESS_MAX_BODY_BYTES, connection_limit=CONNECTION_LIMIT,
                       channel_timeout=CHANNEL_TIMEOUT_S)
    else:
        bottle.run(app, server="wsgiref", host=args.host, port=args.port)
    return 0


def app_from_environment(environ=os.environ) -> bottle.Bottle:
    """The app configured by the DVL_* variables (serving/README.md); a ModelError names the bad one."""
    defaults = BatchSettings()
    try:
        threshold = float(environ["DVL_THRESHOLD"]) if environ.get("DVL_THRESHOLD") else None
        torch_threads = int(environ["DVL_TORCH_THREADS"]) if environ.get("DVL_TORCH_THREADS") else None
        batching_on = environ.get("DVL_BATCHING") or ("1" if on_by_default() else "0")
        if batching_on not in ("0", "1"):
            raise ValueError(f"DVL_BATCHING={batching_on!r}")
        batching = None if batching_on == "0" else BatchSettings(
            int(environ.get("DVL_MAX_BATCH_SIZE") or defaults.max_batch_size),
            float(environ.get("DVL_MAX_WAIT_MS") or defaults.max_wait_ms),
            int(environ.get("DVL_MAX_QUEUE") or defaults.max_queue))
    except ValueError as error:
        raise ModelError(f"a DVL_* setting is malformed ({error}): DVL_THRESHOLD and DVL_MAX_WAIT_MS take numbers, "
                         f"the other DVL_MAX_* and DVL_TORCH_THREADS integers, DVL_BATCHING 0 or 1") from error
    precision = environ.get("DVL_PRECISION") or "auto"
    if precision not in PRECISIONS:
        raise ModelError(f"DVL_PRECISION must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    model_folder = resolve_model_folder(environ.get("DVL_MODEL"), environ.get("DVL_RESULTS") or "results/results.json")
    return serving_app(model_folder, threshold=threshold, runs_dir=environ.get("DVL_RUNS_DIR", "runs") or None,
                       precision=precision, batching=batching, torch_threads=torch_threads)[0]
