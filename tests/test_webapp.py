"""The web app over real HTTP on loopback, with a tiny random BERT classifier saved to a tmp folder.

The tiny model's verdicts mean nothing, so these tests check what does not depend on training:
the threshold logic, threading, every refused input and its status, escaping, headers, and that
the server keeps serving after each refusal. The core app (webapp/app.py) is served as it is; the
choice of runs and the WSGI entry are serving/'s.
"""
import contextlib
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

import pytest
import torch
import waitress
from transformers import BertForSequenceClassification
from waitress import wasyncore

from conftest import TINY_WORDS, call_concurrently, tiny_bert_config, tiny_tokenizer
from models.load import ModelError
from serving.runs import best_run, find_runs, load_predictors, resolve_model_folder
from serving.server import main
from webapp.app import MAX_BATCH, MAX_BODY_BYTES, MAX_TEXT_CHARS, Predictor, make_app

REPO_ROOT = Path(__file__).resolve().parent.parent
TOXIC, NOT_TOXIC = "toxic", "not_toxic"


def save_tiny_model(folder: Path, *, threshold: float = 0.5, seed: int = 0) -> Path:
    """A random 2-layer BERT classifier, a word-level tokenizer and a history.json, as a run folder."""
    tiny_tokenizer().save_pretrained(folder)
    torch.manual_seed(seed)
    config = tiny_bert_config(layers=2, max_position_embeddings=128, initializer_range=0.5)
    BertForSequenceClassification(config).save_pretrained(folder)
    (folder / "history.json").write_text(json.dumps({"method": folder.name,
                                                     "validation_threshold": threshold}))
    return folder


@contextlib.contextmanager
def serve(app):
    """Serve ``app`` with waitress on a free loopback port in a thread; yields (host, port)."""
    server = waitress.create_server(app, host="127.0.0.1", port=0, threads=4)
    stopping = threading.Event()

    def run():  # closing the sockets under the loop's select() raises EBADF there: expected once stopping
        try:
            server.run()
        except OSError:
            if not stopping.is_set():
                raise

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield "127.0.0.1", server.effective_port
    finally:
        stopping.set()
        server.task_dispatcher.shutdown()
        wasyncore.close_all(server._map)
        thread.join(timeout=10)


def fetch(address, method: str, path: str, body: bytes | None = None,
          headers: dict | None = None) -> tuple[int, dict, str]:
    connection = http.client.HTTPConnection(*address, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        reply = connection.getresponse()
        return reply.status, dict(reply.getheaders()), reply.read().decode("utf-8")
    finally:
        connection.close()


def post_json(address, payload) -> tuple[int, dict]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode("utf-8")
    status, _, text = fetch(address, "POST", "/api/predict", body, {"Content-Type": "application/json"})
    return status, json.loads(text)


def post_form(address, body: bytes) -> tuple[int, str]:
    status, _, text = fetch(address, "POST", "/classify", body,
                            {"Content-Type": "application/x-www-form-urlencoded"})
    return status, text


def form_body(**fields) -> bytes:
    return urllib.parse.urlencode(fields).encode("ascii")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    save_tiny_model(runs / "even", threshold=0.42, seed=0)
    save_tiny_model(runs / "odd", threshold=0.6, seed=1)
    return runs


@pytest.fixture(scope="module")
def predictors(runs_dir):
    return load_predictors(runs_dir / "even", runs_dir=runs_dir, precision="fp32")[0]


@pytest.fixture(scope="module")
def address(predictors):
    with serve(make_app(predictors, "even")) as address:
        yield address


# --- the predict function ---------------------------------------------------------------------

def test_threshold_defaults_to_validation_threshold_and_can_be_overridden(runs_dir):
    assert Predictor.from_folder(runs_dir / "even").threshold == 0.42
    assert Predictor.from_folder(runs_dir / "even", threshold=0.9).threshold == 0.9


def test_label_is_toxic_at_or_above_the_threshold(predictors):
    probability = predictors["even"].predict(["you idiot"])[0]["toxic_probability"]
    model, tokenizer = predictors["even"].model, predictors["even"].tokenizer
    at_threshold = Predictor("at", model, tokenizer, threshold=probability)
    above = Predictor("above", model, tokenizer, threshold=min(1.0, probability + 1e-6))
    assert at_threshold.predict(["you idiot"])[0]["label"] == TOXIC
    assert above.predict(["you idiot"])[0]["label"] == NOT_TOXIC


def test_batch_predictions_equal_one_by_one_despite_padding(predictors):
    texts = ["thank you", "you stupid idiot shut up loser", "fair point"]
    batch = [result["toxic_probability"] for result in predictors["even"].predict(texts)]
    single = [predictors["even"].predict([text])[0]["toxic_probability"] for text in texts]
    assert batch == pytest.approx(single, abs=1e-5)
    assert len(set(round(p, 4) for p in single)) == 3, "the tiny model should tell texts apart"


def test_concurrent_calls_give_the_serial_results(predictors):
    texts = [" ".join(TINY_WORDS[i:i + 1 + i % 7]) for i in range(16)]
    expected = [predictors["even"].predict([text])[0] for text in texts]
    results = {}

    def worker(index: int):
        for _ in range(5):
            results[index] = predictors["even"].predict([texts[index]])[0]

    assert call_concurrently(worker, len(texts)) == []
    for index, result in results.items():
        assert result["label"] == expected[index]["label"]
        assert result["toxic_probability"] == pytest.approx(expected[index]["toxic_probability"], abs=1e-5)


def test_texts_longer_than_the_position_table_are_truncated(predictors):
    """The tiny model has 128 positions; without truncation to 128 tokens this would crash."""
    assert len(predictors["even"].predict(["idiot " * 1000])) == 1


def test_a_folder_without_model_or_threshold_is_refused_clearly(tmp_path, runs_dir):
    with pytest.raises(ModelError, match="is no run: needs config.json"):
        Predictor.from_folder(tmp_path / "missing")
    folder = save_tiny_model(tmp_path / "no-history")
    (folder / "history.json").unlink()
    with pytest.raises(ModelError, match="--threshold"):
        Predictor.from_folder(folder)
    assert Predictor.from_folder(folder, threshold=0.5).threshold == 0.5
    for threshold in (1.5, True, "0.5"):
        with pytest.raises(ModelError, match="between 0 and 1"):
            Predictor.from_folder(runs_dir / "even", threshold=threshold)


def test_a_corrupt_or_mismatched_checkpoint_is_refused_clearly(tmp_path):
    corrupt = save_tiny_model(tmp_path / "corrupt")
    weights = corrupt / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ModelError, match="corrupt or truncated"):
        Predictor.from_folder(corrupt)
    mismatched = save_tiny_model(tmp_path / "mismatched")
    config = json.loads((mismatched / "config.json").read_text())
    config["hidden_size"] *= 2
    (mismatched / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="do not fit"):
        Predictor.from_folder(mismatched)
    three_labels = save_tiny_model(tmp_path / "three-labels")
    BertForSequenceClassification(tiny_bert_config(layers=2, max_position_embeddings=128, num_labels=3)) \
        .save_pretrained(three_labels)
    with pytest.raises(ModelError, match="num_labels"):
        Predictor.from_folder(three_labels)


def test_runs_are_found_in_method_order_and_only_classifiers_are_compared(tmp_path, runs_dir):
    for name in ("lora", "teacher", "zzz", "minilm", "tfidf"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "history.json").write_text("{}")
        if name != "tfidf":  # the TF-IDF baseline is no Hugging Face model: no config.json
            (tmp_path / name / "config.json").write_text("{}")
    (tmp_path / "unfinished").mkdir()
    for name in ("toxic-comments/odd-seed42", "toxic-comments/teacher-seed42", "toxic-comments/odd-seed1"):
        (tmp_path / name).mkdir(parents=True)
        for file in ("history.json", "config.json"):
            (tmp_path / name / file).write_text("{}")
    found = find_runs(tmp_path)
    assert list(found) == ["teacher", "lora", "minilm", "zzz", "toxic-comments/teacher", "toxic-comments/odd"]
    assert found["toxic-comments/odd"] == tmp_path / "toxic-comments" / "odd-seed42"
    assert list(load_predictors(runs_dir / "odd", runs_dir=runs_dir, precision="fp32")[0]) == ["odd", "even"]


def test_best_run_is_the_best_students_run_with_the_highest_validation_macro_f1(tmp_path, runs_dir):
    results = tmp_path / "results" / "results.json"
    results.parent.mkdir()
    results.write_text(json.dumps({"runs": [
        {"name": "odd", "path": str(runs_dir / "odd"), "validation": {"macro_f1": 0.81}},
        {"name": "even", "path": str(runs_dir / "even"), "validation": {"macro_f1": 0.83}},
        {"name": "gone", "path": str(tmp_path / "gone"), "validation": {"macro_f1": 0.99}},
        {"name": "broken", "path": 3, "validation": "high"},
        "not a run",
    ]}))
    assert best_run(results) == runs_dir / "even"
    study = json.loads(results.read_text()) | {"best_student": {"method": "odd", "runs": ["odd", "odd-seed1"]}}
    results.write_text(json.dumps(study))
    assert best_run(results) == runs_dir / "odd", "the study's best student, though even scores higher"
    results.write_text(json.dumps(study | {"best_student": {"method": "top", "runs": ["gone", ["not", "a", "name"]]}}))
    assert best_run(results) == runs_dir / "even", "none of the best student's runs is on disk: every run counts"
    ablation = {"name": "transfer-odd", "path": str(runs_dir / "odd"), "validation": {"macro_f1": 0.8}}
    results.write_text(json.dumps(study | {"runs": study["runs"][1:], "ablation_runs": [ablation],
                                           "best_student": {"method": "transfer-odd", "runs": ["transfer-odd"]}}))
    assert best_run(results) == runs_dir / "odd", "the best student may be an ablation point"
    assert best_run(tmp_path / "missing.json") is None
    with pytest.raises(ModelError, match="python train.py --method even"):
        resolve_model_folder(None, tmp_path / "missing.json")


def test_command_without_a_trained_model_says_how_to_train_one(tmp_path, capsys):
    assert main(["--results", str(tmp_path / "results.json")]) == 2
    message = capsys.readouterr().err
    assert "python train.py --method even" in message and "python evaluate.py" in message


# --- the form ---------------------------------------------------------------------------------

def test_front_page_has_the_form_examples_and_security_headers(address):
    status, headers, page = fetch(address, "GET", "/")
    assert status == 200
    assert '<textarea id="text" name="text"' in page
    assert page.count('class="example"') >= 3
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert fetch(address, "GET", "/style.css")[0] == 200


def test_form_shows_verdict_probability_threshold_and_model(address, predictors):
    status, page = post_form(address, form_body(text="you stupid idiot", mode="single"))
    expected = predictors["even"].predict(["you stupid idiot"])[0]
    assert status == 200
    assert f'id="verdict" class="verdict" data-label="{expected["label"]}"' in page
    assert f'<strong id="probability">{expected["toxic_probability"]:.3f}</strong>' in page
    assert '<meter class="bar"' in page
    assert '<span id="threshold">0.420</span>' in page
    assert '<span id="model">even</span>' in page


def test_typed_html_comes_back_escaped(address):
    status, page = post_form(address, form_body(text="<script>alert(1)</script>"))
    assert status == 200
    assert "<script>" not in page
    assert '<blockquote id="submitted-text">&lt;script&gt;alert(1)&lt;/script&gt;</blockquote>' in page


def test_compare_mode_shows_every_model_side_by_side(address, predictors):
    status, page = post_form(address, form_body(text="thank you", mode="compare"))
    assert status == 200
    for name in ("even", "odd"):
        label = predictors[name].predict(["thank you"])[0]["label"]
        assert f'<tr data-model="{name}" data-label="{label}">' in page
    assert page.index('data-model="odd"') < page.index('data-model="even"'), "method order"


@pytest.mark.parametrize("body, content_type, status, message", [
    (form_body(text=""), "application/x-www-form-urlencoded", 400, "is empty"),
    (form_body(text=" \n\t "), "application/x-www-form-urlencoded", 400, "is empty"),
    (b"mode=single", "application/x-www-form-urlencoded", 400, "is empty"),
    (form_body(text="a" * (MAX_TEXT_CHARS + 1)), "application/x-www-form-urlencoded", 413, "the limit is 5,000"),
    (b"text=%FF%FE", "application/x-www-form-urlencoded", 400, "not valid UTF-8"),
    (b"text=caf\xe9", "application/x-www-form-urlencoded", 400, "not valid UTF-8"),
    (b"text=" + b"a" * MAX_BODY_BYTES, "application/x-www-form-urlencoded", 413, "1 MiB"),
    (b"--x\r\n", "multipart/form-data; boundary=x", 400, "is empty"),
    (b"&".join([b"text=a"] * 20), "application/x-www-form-urlencoded", 400, "too many fields"),
], ids=["empty", "whitespace", "missing", "too-long", "bad-percent-escape", "latin-1", "over-1MiB",
        "multipart", "too-many-fields"])
def test_bad_form_input_gets_a_friendly_page_and_the_server_goes_on(address, body, content_type,
                                                                    status, message):
    got_status, _, page = fetch(address, "POST", "/classify", body, {"Content-Type": content_type})
    assert got_status == status
    assert 'id="error"' in page and message in page and "Traceback" not in page
    assert '<textarea id="text"' in page, "the form is offered again"
    assert post_form(address, form_body(text="thank you"))[0] == 200


def test_unknown_pages_get_a_friendly_page(address):
    status, headers, page = fetch(address, "GET", "/nowhere")
    assert status == 404 and "There is no page at this address." in page
    assert headers["X-Content-Type-Options"] == "nosniff"


# --- the JSON API -----------------------------------------------------------------------------

def test_api_classifies_one_text_or_a_batch(address, predictors):
    status, reply = post_json(address, {"text": "you idiot"})
    assert status == 200
    assert reply["model"] == "even" and reply["threshold"] == 0.42
    assert reply["results"] == [pytest.approx(predictors["even"].predict(["you idiot"])[0])]
    texts = ["thank you"] * (MAX_BATCH - 1) + ["loser"]
    status, reply = post_json(address, {"texts": texts, "model": "odd"})
    assert status == 200 and reply["model"] == "odd" and reply["threshold"] == 0.6
    assert len(reply["results"]) == MAX_BATCH
    assert set(reply["results"][0]) == {"label", "toxic_probability"}
    assert reply["results"][-1]["toxic_probability"] == pytest.approx(
        predictors["odd"].predict(["loser"])[0]["toxic_probability"], abs=1e-5)


def test_api_accepts_the_longest_allowed_text(address):
    assert post_json(address, {"text": "a" * MAX_TEXT_CHARS})[0] == 200


@pytest.mark.parametrize("payload, status, message", [
    ({"text": ""}, 400, "is empty"),
    ({"text": "  \n\t"}, 400, "is empty"),
    ({"texts": ["fine", " "]}, 400, "Text 1 is empty"),
    ({"text": "a" * (MAX_TEXT_CHARS + 1)}, 413, "the limit is 5,000"),
    ({"texts": ["fine", "a" * (MAX_TEXT_CHARS + 1)]}, 413, "Text 1 has 5,001 characters"),
    (b'{"text": "unclosed', 400, "not valid JSON"),
    (b"", 400, "not valid JSON"),
    (b'[' * 100_000, 400, "not valid JSON"),
    ({"text": 5}, 400, "Strings only"),
    ({"texts": "one text"}, 400, "Strings only"),
    ({"texts": ["a", None]}, 400, "Strings only"),
    (["a list"], 400, "Send a JSON object"),
    ({"text": "a", "texts": ["b"]}, 400, "Send a JSON object"),
    ({"comment": "a"}, 400, "Send a JSON object"),
    ({"texts": []}, 400, "send between 1 and 64"),
    ({"texts": ["a"] * (MAX_BATCH + 1)}, 400, "holds 65 texts"),
    ({"text": "a", "model": "gpt"}, 400, "Unknown model"),
    ({"text": "a", "model": ["even"]}, 400, "Unknown model"),
    (b'{"text": "caf\xe9"}', 400, "not valid UTF-8"),
    (b'{"text": "\\ud800"}', 400, "lone surrogate"),
    (b'{"text": "' + b"a" * MAX_BODY_BYTES + b'"}', 413, "1 MiB"),
], ids=["empty", "whitespace", "empty-in-batch", "too-long", "too-long-in-batch", "invalid-json",
        "no-body", "deep-nesting", "text-not-string", "texts-not-list", "texts-with-null",
        "not-an-object", "both-keys", "no-key", "empty-batch", "batch-of-65", "unknown-model",
        "model-not-string", "latin-1", "lone-surrogate", "over-1MiB"])
def test_bad_api_input_gets_a_json_error_and_the_server_goes_on(address, payload, status, message):
    got_status, reply = post_json(address, payload)
    assert got_status == status
    assert message in reply["error"] and "Traceback" not in reply["error"]
    assert fetch(address, "GET", "/")[0] == 200
    assert post_json(address, {"text": "thank you"})[0] == 200


def test_api_errors_from_bottle_are_json_too(address):
    status, headers, body = fetch(address, "GET", "/api/predict")
    assert status == 405 and json.loads(body) == {"error": "This address does not accept that kind of request."}
    assert headers["Content-Type"] == "application/json"


def test_a_crash_gives_a_500_page_without_stack_trace(predictors):
    class BrokenModel(torch.nn.Module):
        def forward(self, **batch):
            raise RuntimeError("secret internal detail")

    broken = Predictor("broken", BrokenModel(), predictors["even"].tokenizer, threshold=0.5)
    with serve(make_app({"broken": broken}, "broken")) as address:
        status, headers, page = fetch(address, "POST", "/classify", form_body(text="hello"),
                                      {"Content-Type": "application/x-www-form-urlencoded"})
        assert status == 500 and "has been logged" in page
        assert "secret internal detail" not in page and "Traceback" not in page
        assert "default-src 'none'" in headers["Content-Security-Policy"]
        status, reply = post_json(address, {"text": "hello"})
        assert status == 500 and "secret" not in reply["error"]
        assert fetch(address, "GET", "/")[0] == 200


# --- deployment -------------------------------------------------------------------------------

def test_waitress_serves_the_wsgi_entry(runs_dir):
    """The documented deployment command, with the model chosen by DVL_MODEL (fp32: no export written here)."""
    port = free_port()
    environment = {**os.environ, "DVL_MODEL": str(runs_dir / "odd"), "DVL_RUNS_DIR": "", "DVL_PRECISION": "fp32",
                   "PYTHONPATH": str(REPO_ROOT)}
    server = subprocess.Popen(
        [sys.executable, "-m", "waitress", "--host=127.0.0.1", f"--port={port}", "--threads=2",
         "serving.wsgi:app"], cwd=REPO_ROOT, env=environment,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, server.stderr.read().decode()
            try:
                status, _, body = fetch(("127.0.0.1", port), "GET", "/health")
                break
            except OSError:
                assert time.monotonic() < deadline, "waitress did not start within 120 s"
                time.sleep(0.2)
        assert status == 200 and json.loads(body)["models"] == ["odd"]
        status, reply = post_json(("127.0.0.1", port), {"texts": ["thank you", "idiot"]})
        assert status == 200 and reply["model"] == "odd" and len(reply["results"]) == 2
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_broken_compare_run_is_left_out_with_a_warning_and_the_app_serves(tmp_path, capsys):
    save_tiny_model(tmp_path / "odd", threshold=0.6, seed=1)
    broken = save_tiny_model(tmp_path / "even", threshold=0.42, seed=0)
    (broken / "model.safetensors").unlink()
    failed = save_tiny_model(tmp_path / "lora.failed", seed=2)  # a run train.py refused to save as a result
    predictors, served = load_predictors(tmp_path / "odd", runs_dir=tmp_path, precision="fp32")
    assert served == "odd" and list(predictors) == ["odd"]
    warning = capsys.readouterr().err
    assert f"the compare view leaves out {broken}" in warning and str(failed) not in warning
    assert predictors["odd"].predict(["you idiot"])[0]["label"] in (TOXIC, NOT_TOXIC)
    with pytest.raises(ModelError, match=str(broken)):  # the served model itself must load
        load_predictors(broken, runs_dir=tmp_path, precision="fp32")
