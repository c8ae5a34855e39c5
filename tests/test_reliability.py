"""What a careless user or an attacker can do to the project, and what happens instead.

No code from a model folder ever runs; a save never loses or displaces a file; one bad run never
stops a report; a setting is checked where it is parsed; idle sockets do not lock out the server.
"""
import io
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import torch

import evaluate
import predict
import train
from conftest import ROOT, tiny_classifier, tiny_history, tiny_tokenizer
from models.load import ModelError, load_classifier, load_config, load_tokenizer
from test_evaluate import load_calls, project  # noqa: F401 - fixtures
from test_train_cli import args_for, folder_bytes, world  # noqa: F401 - fixtures
from training.run_folder import RunFolderError, save_run
from webapp.app import Predictor


# ---- no code from a model folder -------------------------------------------------------------------

def planted_folder(folder: Path, marker: Path) -> Path:
    """A model folder whose config asks transformers to import its own Python, which writes ``marker``."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({
        "model_type": "planted", "architectures": ["PlantedModel"],
        "auto_map": {"AutoConfig": "planted.PlantedConfig", "AutoModel": "planted.PlantedModel",
                     "AutoModelForSequenceClassification": "planted.PlantedModel",
                     "AutoTokenizer": ["planted.PlantedTokenizer", None]}}))
    (folder / "planted.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n"
                                       "from transformers import BertConfig as PlantedConfig\n"
                                       "from transformers import BertModel as PlantedModel\n")
    (folder / "model.safetensors").write_bytes(b"")
    (folder / "history.json").write_text(json.dumps(tiny_history(
        "odd", text_column=None, label_column=None, val_fraction=0.1, split_seed=42)))
    tiny_tokenizer().save_pretrained(folder)
    return folder


def test_a_folder_that_asks_for_its_own_code_is_refused_by_every_loader(tmp_path):
    folder = planted_folder(tmp_path / "planted", tmp_path / "marker")
    for load in (load_config, load_tokenizer, load_classifier):
        with pytest.raises(ModelError, match=r"planted .*own code.*never run"):
            load(str(folder))
    assert not (tmp_path / "marker").exists()


@pytest.mark.parametrize("command", [
    ["predict.py", "--model", "{folder}", "{comments}", "--precision", "fp32"],
    ["train.py", "--method", "odd", "--teacher", "{folder}", "--out", "{out}"],
    ["evaluate.py", "{folder}", "--out", "{out}"],
])
def test_answering_yes_on_stdin_runs_no_code_from_a_model_folder(tmp_path, command):
    folder, marker = planted_folder(tmp_path / "planted", tmp_path / "marker"), tmp_path / "marker"
    (tmp_path / "comments.csv").write_text("text\nyou idiot\n")
    argv = [part.format(folder=folder, comments=tmp_path / "comments.csv", out=tmp_path / "out") for part in command]
    result = subprocess.run([sys.executable, *argv], cwd=ROOT, input="y\n" * 20, capture_output=True, text=True,
                            timeout=300)
    assert not marker.exists(), "the folder's own Python ran"
    assert result.returncode != 0 and "own code" in result.stderr and "Traceback" not in result.stderr


# ---- saves that cannot collide or displace ---------------------------------------------------------

def test_two_saves_into_one_folder_at_once_leave_one_complete_run_and_lose_nothing(tmp_path):
    out, sibling = tmp_path / "runs" / "odd", tmp_path / "runs" / "even"
    save_run(sibling, tiny_classifier(layers=2, seed=9), tiny_tokenizer(), tiny_history("even"))
    sibling_files = folder_bytes(sibling)
    started = threading.Barrier(2)
    errors, models = [], {seed: tiny_classifier(layers=2, seed=seed) for seed in (1, 2)}  # torch's seed is global

    def save(seed: int) -> None:
        def slow_extra(path: Path) -> None:
            started.wait()  # both writers are inside their staging folders at once
            time.sleep(0.3)
            path.write_text(str(seed))
        try:
            save_run(out, models[seed], tiny_tokenizer(), tiny_history("odd", seed=seed),
                     {"writer.txt": slow_extra})
        except Exception as error:  # noqa: BLE001 - asserted below
            errors.append(error)

    threads = [threading.Thread(target=save, args=(seed,)) for seed in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    writer = int((out / "writer.txt").read_text())
    assert json.loads((out / "history.json").read_text())["args"]["seed"] == writer
    reloaded = load_classifier(str(out))
    expected = tiny_classifier(layers=2, seed=writer)
    assert all(torch.equal(a, b) for a, b in zip(reloaded.state_dict().values(), expected.state_dict().values()))
    assert sorted(p.name for p in (tmp_path / "runs").iterdir() if not p.name.endswith(".lock")) == ["even", "odd"]
    assert folder_bytes(sibling) == sibling_files


@pytest.mark.parametrize("kind", ["file", "symlink"])
def test_an_out_that_is_a_file_or_a_symlink_is_refused_before_training_and_left_alone(world, kind, monkeypatch,
                                                                                        capsys):
    target = world / "elsewhere"
    target.mkdir()
    out = world / "runs" / "odd"
    out.parent.mkdir()
    if kind == "file":
        out.write_text("my notes")
    else:
        out.symlink_to(target)
    monkeypatch.setattr(train, "load_splits", lambda *a, **k: pytest.fail("training started"))
    with pytest.raises(RunFolderError, match=r"--out .*odd is a (file|symbolic link)"):
        train.main(args_for("odd", "--out", str(out)))
    assert (out.read_text() == "my notes") if kind == "file" else (out.is_symlink() and out.resolve() == target)
    assert sorted(p.name for p in out.parent.iterdir()) == ["odd"]


def test_a_second_writer_into_the_same_out_fails_in_one_line_before_training(world, monkeypatch):
    out = world / "runs" / "odd"
    other = subprocess.Popen([sys.executable, "-c", "import sys; from training.run_folder import claim_output; "
                              f"claim_output({str(out)!r}); print('claimed', flush=True); sys.stdin.read()"],
                             cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "claimed"  # another train.py is writing runs/odd
        load_splits = train.load_splits
        monkeypatch.setattr(train, "load_splits", lambda *a, **k: pytest.fail("training started"))
        with pytest.raises(RunFolderError, match=r"another process is writing .*odd"):
            train.main(args_for("odd", "--out", str(out)))
    finally:
        other.communicate("", timeout=30)
    monkeypatch.setattr(train, "load_splits", load_splits)
    train.main(args_for("odd", "--out", str(out)))  # the claim ends with its process
    assert (out / "history.json").is_file()


# ---- one bad run never stops the report ------------------------------------------------------------

@pytest.mark.parametrize("content, reason", [
    (b"\xff\xfe not utf-8", "UnicodeDecodeError"),
    (b"[1, 2]", "a JSON object"),
    (json.dumps({**tiny_history("odd"), "args": None}).encode(), "'args'"),
    (json.dumps({**tiny_history("odd", max_length="128")}).encode(), "max_length"),
    (json.dumps({**tiny_history("odd", max_length=4)}).encode(), "max_length"),
])
def test_a_malformed_history_is_skipped_with_its_reason_and_the_good_runs_are_reported(
        project, load_calls, content, reason):
    (project / "runs" / "even" / "history.json").write_bytes(content)
    evaluation = evaluate.main(["--threads", "1"])
    assert "even" not in [run["name"] for run in evaluation["runs"]] and "odd" in evaluation["seeds"]
    (skip,) = [skip for skip in evaluation["skipped"] if skip["path"] == "runs/even"]
    assert reason in skip["reason"] and "\n" not in skip["reason"]


def test_a_teacher_with_a_malformed_history_is_one_line(world):
    (world / "teacher" / "history.json").write_text(json.dumps(tiny_history("teacher", max_length="long")))
    with pytest.raises(ModelError, match=r"max_length"):
        train.main(args_for("odd"))


# ---- settings checked where they are parsed --------------------------------------------------------

@pytest.mark.parametrize("value", ["1", "7"])
def test_a_max_length_too_short_to_hold_a_comment_is_refused(value, capsys):
    with pytest.raises(SystemExit):
        train.parse_args(["--method", "odd", "--max-length", value])
    assert "--max-length" in capsys.readouterr().err


def test_a_recorded_max_length_past_the_models_positions_is_capped_with_a_warning(tmp_path, capsys):
    folder = tmp_path / "odd"
    save_run(folder, tiny_classifier(layers=2), tiny_tokenizer(), tiny_history("odd", max_length=500))
    predictor = Predictor.from_folder(folder)
    assert predictor.max_length == predictor.model.config.max_position_embeddings == 64
    assert "max_length 500" in capsys.readouterr().err
    assert 0 <= predictor.predict(["you idiot " * 400])[0]["toxic_probability"] <= 1


# ---- predict.py ------------------------------------------------------------------------------------

@pytest.fixture
def scored_run(tmp_path):
    folder = tmp_path / "odd"
    save_run(folder, tiny_classifier(layers=2), tiny_tokenizer(), tiny_history("odd", max_length=32))
    return folder


def test_predict_refuses_non_utf8_stdin_in_one_line(scored_run, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"you idiot\n\xff\xfe\n"), encoding="utf-8"))
    assert predict.main(["--model", str(scored_run), "--precision", "fp32"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and "UTF-8" in error and "\n" not in error


@pytest.mark.parametrize("out", ["a_directory.csv", "/proc/not-writable.csv"])
def test_predict_checks_out_before_it_scores(scored_run, tmp_path, monkeypatch, capsys, out):
    (tmp_path / "a_directory.csv").mkdir()
    (tmp_path / "in.csv").write_text("text\nyou idiot\n")
    monkeypatch.setattr(predict, "score", lambda *a, **k: pytest.fail("scored before checking --out"))
    target = tmp_path / out if not out.startswith("/") else Path(out)
    assert predict.main(["--model", str(scored_run), str(tmp_path / "in.csv"), "--out", str(target)]) == 2
    assert "--out" in capsys.readouterr().err


def test_predict_names_tfidf_when_given_a_tfidf_run(tmp_path, capsys):
    folder = tmp_path / "baseline"  # a name that does not say tfidf: the message must
    folder.mkdir()
    (folder / "tfidf.json").write_text("{}")
    (folder / "history.json").write_text(json.dumps(tiny_history("tfidf")))
    (tmp_path / "in.csv").write_text("text\nyou idiot\n")
    assert predict.main(["--model", str(folder), str(tmp_path / "in.csv")]) == 2
    error = capsys.readouterr().err.replace(str(folder), "FOLDER")
    assert "tfidf" in error and error.count("\n") == 1


# ---- the server under idle connections -------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_idle_connections_do_not_lock_out_a_real_request(scored_run):
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "webapp", "--model", str(scored_run), "--no-compare",
                               "--precision", "fp32", "--port", str(port)], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    idle = []
    try:
        for _ in range(600):  # wait for the server to listen
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        for _ in range(150):  # more than waitress' default limit of 100 connections, all silent
            idle.append(socket.create_connection(("127.0.0.1", port)))
        started = time.perf_counter()
        answer = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5).read())
        assert answer["status"] == "ok" and time.perf_counter() - started < 1.0
    finally:
        for connection in idle:
            connection.close()
        server.terminate()
        server.wait(timeout=30)
