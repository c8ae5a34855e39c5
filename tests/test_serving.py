"""Serving settings of the predict path: the run's own max_length, precision, request batching, the full server."""
import json
import threading

import pytest
import torch

from conftest import TINY_WORDS, call_concurrently, tiny_classifier
from serving import precision
from serving.batching import BatchingPredictor, BatchSettings
from serving.precision import load_predictor, resolve_precision
from serving.server import parse_args, serving_app
from test_webapp import fetch, post_json, save_tiny_model, serve
from webapp.app import Predictor, make_app

CPU = torch.device("cpu")
BF16_TOLERANCE = 0.05  # |P(toxic) in bf16 - P(toxic) in fp32|, on the tiny model


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("runs") / "odd", threshold=0.5, seed=0)


def with_max_length(folder, max_length: int):
    history = json.loads((folder / "history.json").read_text())
    (folder / "history.json").write_text(json.dumps({**history, "args": {"max_length": max_length}}))
    return folder


# --- max_length -------------------------------------------------------------------------------

def test_the_app_truncates_at_the_runs_own_max_length(tmp_path):
    """A run trained with --max-length 8 reads [CLS] + 6 words + [SEP]: the web app must cut there too, not at 128."""
    folder = with_max_length(save_tiny_model(tmp_path / "short", seed=0), 8)
    predictor = load_predictor(folder, precision="fp32")
    assert predictor.max_length == 8
    long, cut = "you are an idiot stupid moron and a fool", "you are an idiot stupid moron"
    with serve(make_app({"short": predictor}, "short")) as address:
        _, reply = post_json(address, {"texts": [long, cut]})
    served_long, served_cut = (result["toxic_probability"] for result in reply["results"])
    assert served_long == pytest.approx(served_cut, abs=1e-6)
    untruncated = Predictor("full", predictor.model, predictor.tokenizer, 0.5, max_length=128)
    assert untruncated.predict([long])[0]["toxic_probability"] != pytest.approx(served_long, abs=1e-4)


def test_a_history_without_max_length_falls_back_to_trainings_default(run_folder):
    assert Predictor.from_folder(run_folder).max_length == 128


# --- precision --------------------------------------------------------------------------------

def test_precision_falls_back_to_fp32_where_bf16_is_not_native(monkeypatch):
    model = tiny_classifier(layers=1)
    monkeypatch.setattr(precision, "bf16_is_native", lambda device: False)
    assert resolve_precision("bf16", model) == resolve_precision("auto", model) == "fp32"
    monkeypatch.setattr(precision, "bf16_is_native", lambda device: True)
    assert resolve_precision("auto", model) == resolve_precision("bf16", model) == "bf16"
    assert resolve_precision("fp32", model) == "fp32"
    with pytest.raises(ValueError, match="unknown precision"):
        resolve_precision("int4", model)


def test_bf16_runs_in_bf16_and_stays_within_the_stated_tolerance(run_folder, monkeypatch):
    """bf16 changes the probabilities (so it really ran in bf16), by less than BF16_TOLERANCE.

    The tiny model's random weights (initializer range 0.5) make logits far larger than a trained
    model's, so this bound is loose; bench/serving.py reports the largest difference on the real
    odd student's test comments. Where bf16 is emulated it is slow but exact, so the test runs on any CPU.
    """
    monkeypatch.setattr(precision, "bf16_is_native", lambda device: True)
    texts = [" ".join(TINY_WORDS[i:i + 3 + i % 9]) for i in range(20)]
    fp32 = [v["toxic_probability"] for v in load_predictor(run_folder, precision="fp32").predict(texts)]
    bf16_predictor = load_predictor(run_folder, precision="bf16")
    assert bf16_predictor.precision == "bf16"
    bf16 = [v["toxic_probability"] for v in bf16_predictor.predict(texts)]
    differences = [abs(a - b) for a, b in zip(fp32, bf16)]
    assert 0 < max(differences) < BF16_TOLERANCE


# --- request batching -------------------------------------------------------------------------

def test_the_web_app_batches_by_default_with_a_gpu_and_not_on_a_cpu(monkeypatch):
    """serving.batching.on_by_default: measured on 2 CPU cores, one pass per request served more (bench/serving.py)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert parse_args([]).batching is None
    assert parse_args(["--batching", "on", "--max-wait-ms", "5"]).batching == BatchSettings(max_wait_ms=5)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert parse_args([]).batching == BatchSettings()
    assert parse_args(["--batching", "off"]).batching is None



def test_concurrent_callers_share_passes_and_each_gets_its_own_answer(run_folder):
    predictor = load_predictor(run_folder, precision="fp32")
    texts = [" ".join(TINY_WORDS[i:i + 1 + i % 7]) for i in range(24)]
    expected = [predictor.predict([text])[0]["toxic_probability"] for text in texts]
    assert len({round(p, 4) for p in expected}) > 12, "the tiny model should tell the texts apart"
    batching = BatchingPredictor(predictor, BatchSettings(max_batch_size=8, max_wait_ms=50))
    start, answers = threading.Barrier(len(texts)), {}

    def caller(index: int) -> None:
        start.wait()
        for _ in range(3):
            answers.setdefault(index, []).append(batching.predict([texts[index]])[0]["toxic_probability"])

    assert call_concurrently(caller, len(texts)) == []
    for index, probabilities in answers.items():
        assert probabilities == pytest.approx([expected[index]] * 3, abs=1e-5), f"caller {index} got another's answer"
    assert batching.requests_served == 3 * len(texts)
    assert batching.forward_passes < batching.requests_served / 2, "requests arriving together share passes"


def test_a_batch_never_holds_more_than_max_batch_size_texts(run_folder):
    sizes = []
    predictor = load_predictor(run_folder, precision="fp32")

    class Recording:
        name, threshold = predictor.name, predictor.threshold

        def predict(self, texts):
            sizes.append(len(texts))
            return predictor.predict(texts)

    batching = BatchingPredictor(Recording(), BatchSettings(max_batch_size=5, max_wait_ms=30))
    requests = [["thank you"] * size for size in (3, 2, 4, 1, 5, 2)]
    threads = [threading.Thread(target=batching.predict, args=(texts,)) for texts in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(sizes) == 17 and max(sizes) <= 5


class Blocked:
    """A predictor that holds the worker until released: the queue behind it fills up."""
    name, threshold = "blocked", 0.5

    def __init__(self):
        self.release, self.entered = threading.Event(), threading.Event()

    def predict(self, texts):
        self.entered.set()
        self.release.wait(timeout=30)
        return [{"label": "not_toxic", "toxic_probability": 0.0} for _ in texts]


def test_a_full_queue_answers_503_at_once_and_the_waiting_requests_still_complete():
    blocked = Blocked()
    batching = BatchingPredictor(blocked, BatchSettings(max_batch_size=1, max_wait_ms=0, max_queue=1))
    with serve(make_app({"blocked": batching}, "blocked")) as address:
        replies = []
        first = threading.Thread(target=lambda: replies.append(post_json(address, {"text": "one"})))
        first.start()
        assert blocked.entered.wait(timeout=10)  # the worker holds request one
        second = threading.Thread(target=lambda: replies.append(post_json(address, {"text": "two"})))
        second.start()
        while batching._queue.qsize() < 1:  # request two waits in the queue
            threading.Event().wait(0.01)
        status, reply = post_json(address, {"text": "three"})
        assert status == 503 and "busy" in reply["error"]
        blocked.release.set()
        first.join()
        second.join()
    assert sorted(status for status, _ in replies) == [200, 200]


def test_an_error_in_a_shared_pass_reaches_every_caller_and_the_worker_goes_on(run_folder):
    predictor = load_predictor(run_folder, precision="fp32")
    failing = {"on": True}

    class Flaky:
        name, threshold = predictor.name, predictor.threshold

        def predict(self, texts):
            if failing["on"]:
                raise RuntimeError("out of memory")
            return predictor.predict(texts)

    batching = BatchingPredictor(Flaky(), BatchSettings(max_wait_ms=20))
    errors = []

    def caller():
        try:
            batching.predict(["thank you"])
        except RuntimeError as error:
            errors.append(str(error))

    threads = [threading.Thread(target=caller) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == ["out of memory"] * 4
    failing["on"] = False
    assert batching.predict(["thank you"]) == predictor.predict(["thank you"])


# --- the full server ----------------------------------------------------------------------------

def test_the_full_server_adds_health_and_explanations_to_the_core_app(run_folder):
    """serving_app: the core app with /health (and the precision that runs) and serving/explain.py's hook."""
    app, predictors, served = serving_app(run_folder, precision="fp32", torch_threads=torch.get_num_threads())
    with serve(app) as address:
        status, headers, body = fetch(address, "GET", "/health")
        _, reply = post_json(address, {"text": "you idiot", "explain": True})
    assert status == 200 and "default-src 'none'" in headers["Content-Security-Policy"]
    assert json.loads(body) == {"status": "ok", "model": "odd", "models": ["odd"], "precision": "fp32"}
    assert served == "odd" and [item["word"] for item in reply["results"][0]["explanation"]] == ["you", "idiot"]
