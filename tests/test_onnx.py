"""The ONNX Runtime setting of the predict path: the export command and the export on first serve, the
check that refuses a stale export, ``auto``'s choice, and the same probabilities as PyTorch from predict.py
and the web app."""
import importlib.util
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
from transformers import BertForSequenceClassification

import predict
from conftest import ROOT, TINY_WORDS, call_concurrently, tiny_bert_config, tiny_history, tiny_tokenizer
from embedded.pypi import sha256_of
from report.scores import scores_key
from models.load import ModelError
from report.costs import folder_size_mb
from serving import export_onnx
from serving.batching import BatchSettings
from serving.export_onnx import (EXPORT_RECORD_FILE, INT8_AUC_TOLERANCE, INT8_FILE, ONNX_FILE, REQUIREMENTS,
                                 WEIGHTS_FILE, OnnxClassifier, export_for_serving, export_run)
from serving.precision import load_predictor, onnx_model, resolve_precision
from serving.server import serving_app
from test_webapp import fetch, post_json, serve
from training.run_folder import save_run
from training.metrics import binary_metrics
from webapp.app import Predictor

CPU = torch.device("cpu")
ONNX_TOLERANCE = 1e-4  # |P(toxic) from ONNX Runtime - P(toxic) from PyTorch fp32|
# Lengths 1 to 12 words, so that every batch of 4 pads its shorter comments.
TEXTS = [" ".join(TINY_WORDS[i:i + 1 + (5 * i) % 12]) for i in range(16)]


def save_tiny_run(folder: Path, seed: int = 3) -> Path:
    torch.manual_seed(seed)
    model = BertForSequenceClassification(tiny_bert_config(layers=2, initializer_range=0.5))
    save_run(folder, model, tiny_tokenizer(), tiny_history("odd", threshold=0.5, max_length=32, out=str(folder)))
    return folder


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """A tiny run folder with a fresh ONNX export."""
    folder = save_tiny_run(tmp_path_factory.mktemp("runs") / "odd")
    export_run(folder)
    return folder


@pytest.fixture
def copy_of(exported, tmp_path):
    """A copy of the exported run, for tests that change it."""
    return Path(shutil.copytree(exported, tmp_path / "odd"))


def probabilities(predictor: Predictor, texts: list[str], batch_size: int = 4) -> list[float]:
    return [verdict["toxic_probability"] for verdict in predictor.predict(texts, batch_size=batch_size)]


def retrain(folder: Path, capsys) -> None:
    """Replace the run's weights with another model's, as a retrained run in the same folder has."""
    torch.manual_seed(4)
    BertForSequenceClassification(tiny_bert_config(layers=2, initializer_range=0.5)).save_pretrained(folder)
    capsys.readouterr()  # save_pretrained's progress bar


# --- the export ---------------------------------------------------------------------------------

def test_onnx_runtime_gives_torchs_fp32_probabilities_for_comments_of_different_lengths(exported):
    """Padded batches of 4 comments of 1 to 12 words: the dynamic axes and the attention mask at work."""
    reference = probabilities(load_predictor(exported, precision="fp32"), TEXTS)
    onnx = load_predictor(exported, precision="onnx")
    assert onnx.precision == "onnx" and isinstance(onnx.model, OnnxClassifier)
    assert probabilities(onnx, TEXTS) == pytest.approx(reference, abs=ONNX_TOLERANCE)
    assert probabilities(onnx, TEXTS, batch_size=64) == pytest.approx(reference, abs=ONNX_TOLERANCE)
    assert len({round(p, 3) for p in reference}) > 10, "the tiny model should tell the comments apart"
    assert [tuple(graph_input.shape) for graph_input in onnx.model.session.get_inputs()] == \
        [("batch", "length")] * 2


def test_the_export_records_the_weights_it_came_from_and_leaves_no_temporary_file(exported):
    record = json.loads((exported / EXPORT_RECORD_FILE).read_text())
    assert record["weights_sha256"] == sha256_of(exported / WEIGHTS_FILE)
    assert record["check"]["max_probability_difference"] <= ONNX_TOLERANCE
    assert not [path.name for path in exported.iterdir() if path.name.startswith(".")]


def test_an_export_that_disagrees_with_pytorch_is_not_written(tmp_path, monkeypatch):
    folder = save_tiny_run(tmp_path / "odd")
    monkeypatch.setattr(export_onnx, "EXPORT_TOLERANCE", -1.0)
    with pytest.raises(ModelError, match="nothing was written"):
        export_run(folder)
    assert sorted(path.name for path in folder.iterdir() if "onnx" in path.name) == []


def test_the_export_command_writes_the_file_and_bad_input_gets_one_line(tmp_path, capsys, monkeypatch):
    folder = save_tiny_run(tmp_path / "odd")
    assert export_onnx.main([str(folder)]) == 0
    assert f"wrote {folder / ONNX_FILE}" in capsys.readouterr().out
    assert export_onnx.check_export(folder) == folder / ONNX_FILE

    assert export_onnx.main([str(tmp_path / "nothing")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and f"has no {WEIGHTS_FILE}" in error and "\n" not in error

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnx" else real_find_spec(name, *a))
    assert export_onnx.main([str(folder)]) == 2
    assert f"pip install {REQUIREMENTS['onnx']}" in capsys.readouterr().err


def test_the_pip_commands_in_the_errors_name_the_pinned_versions():
    assert set(REQUIREMENTS.values()) <= set((ROOT / "requirements.txt").read_text().split())


def test_the_export_is_neither_scored_nor_counted_in_the_runs_size(tmp_path):
    folder = save_tiny_run(tmp_path / "odd")
    key, size = scores_key(folder), folder_size_mb(folder)
    export_run(folder)
    assert scores_key(folder) == key
    assert folder_size_mb(folder) == size


# --- the int8 export ---------------------------------------------------------------------------

def test_int8_quantizes_every_matrix_product_but_the_feed_forward_outputs(exported):
    """The feed-forward output projections, one per layer, stay fp32 (export_onnx.kept_in_fp32); the rest is int8."""
    import onnx
    graph = onnx.load(str(exported / INT8_FILE)).graph
    weights = {initializer.name: initializer for initializer in graph.initializer}
    fp32_products = [node for node in graph.node if node.op_type == "MatMul"
                     and any(name in weights for name in node.input)]
    layers = 2
    assert len(fp32_products) == layers
    for node in fp32_products:
        weight = next(weights[name] for name in node.input if name in weights)
        assert tuple(weight.dims) == (64, 32) and weight.data_type == onnx.TensorProto.FLOAT  # (intermediate, hidden)
    assert sum(node.op_type == "MatMulInteger" for node in graph.node) >= 4 * layers, "q, k, v, attention output, ..."
    record = json.loads((exported / EXPORT_RECORD_FILE).read_text())
    assert record["int8"]["kept_in_fp32"] == [node.name for node in fp32_products]


def test_int8_scores_close_to_fp32_and_says_it_is_int8(exported):
    reference = probabilities(load_predictor(exported, precision="fp32"), TEXTS)
    int8 = load_predictor(exported, precision="int8")
    assert int8.precision == "int8" and int8.model.precision == "int8"
    assert probabilities(int8, TEXTS) == pytest.approx(reference, abs=0.1), "rounding moves it, within bounds"
    assert probabilities(int8, TEXTS) != pytest.approx(reference, abs=ONNX_TOLERANCE), "int8 is not the fp32 graph"


def test_the_export_measures_int8_on_the_validation_texts_it_is_given(tmp_path):
    folder = save_tiny_run(tmp_path / "odd")
    labels = [index % 2 for index in range(len(TEXTS))]
    validation = export_run(folder, validation=(TEXTS, labels))["int8"]["validation"]
    assert validation["comments"] == len(TEXTS)
    assert validation["roc_auc_change"] == pytest.approx(validation["roc_auc_int8"] - validation["roc_auc_fp32"])
    fp32 = probabilities(load_predictor(folder, precision="onnx"), TEXTS)
    assert validation["roc_auc_fp32"] == pytest.approx(binary_metrics(labels, fp32)["roc_auc"])


def set_int8_change(folder: Path, validation: dict) -> None:
    record = json.loads((folder / EXPORT_RECORD_FILE).read_text())
    record["int8"]["validation"] = validation
    (folder / EXPORT_RECORD_FILE).write_text(json.dumps(record))


def test_auto_serves_int8_only_where_the_export_measured_it_within_tolerance(copy_of):
    assert "unmeasured" in json.loads((copy_of / EXPORT_RECORD_FILE).read_text())["int8"]["validation"], \
        "a tiny run's history.json names no data to rebuild"
    assert load_predictor(copy_of).precision == "onnx"
    set_int8_change(copy_of, {"roc_auc_change": -INT8_AUC_TOLERANCE / 2})
    assert load_predictor(copy_of).precision == "int8"
    set_int8_change(copy_of, {"roc_auc_change": -2 * INT8_AUC_TOLERANCE})
    assert load_predictor(copy_of).precision == "onnx"
    assert load_predictor(copy_of, precision="int8").precision == "int8", "asked for, int8 is served"


def test_a_stale_int8_export_is_refused_too(copy_of, capsys):
    retrain(copy_of, capsys)
    with pytest.raises(ModelError, match=f"{INT8_FILE} is stale"):
        load_predictor(copy_of, precision="int8")


# --- stale exports and auto's choice ------------------------------------------------------------

def test_a_stale_export_is_refused_in_one_line(copy_of, tmp_path, capsys):
    retrain(copy_of, capsys)
    with pytest.raises(ModelError) as refused:
        load_predictor(copy_of, precision="onnx")
    message = str(refused.value)
    assert "stale" in message and f"python -m serving.export_onnx {copy_of}" in message and "\n" not in message

    source = tmp_path / "comments.csv"
    pd.DataFrame({"text": TEXTS}).to_csv(source, index=False)
    assert predict.main(["--model", str(copy_of), str(source), "--precision", "onnx"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and "stale" in error and "\n" not in error


def test_an_export_without_its_record_is_refused(copy_of):
    (copy_of / EXPORT_RECORD_FILE).unlink()
    with pytest.raises(ModelError, match="no readable record"):
        load_predictor(copy_of, precision="onnx")


def test_auto_serves_a_fresh_export_and_falls_back_to_pytorch_otherwise(copy_of, tmp_path, capsys, monkeypatch):
    assert load_predictor(copy_of).precision == "onnx"
    without = save_tiny_run(tmp_path / "without")
    pytorch = load_predictor(without)
    assert pytorch.precision in ("bf16", "fp32") and pytorch.precision == resolve_precision("auto", pytorch.model)
    assert "warning" not in capsys.readouterr().err, "a run without an export is the usual case: no warning"

    assert onnx_model(copy_of, "auto", torch.device("meta")) is None, \
        "ONNX Runtime runs on the CPU: auto keeps a model that is placed elsewhere on its device"

    retrain(copy_of, capsys)
    assert load_predictor(copy_of).precision in ("bf16", "fp32")
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1 and "precision auto does not use the ONNX export" in warnings[0] and "stale" in warnings[0]


def test_without_onnxruntime_auto_falls_back_and_onnx_says_what_to_install(exported, capsys, monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "onnxruntime" else real_find_spec(name, *a))
    assert load_predictor(exported).precision in ("bf16", "fp32")
    assert f"pip install {REQUIREMENTS['onnxruntime']}" in capsys.readouterr().err
    with pytest.raises(ModelError, match=f"pip install {REQUIREMENTS['onnxruntime']} to run an ONNX export"):
        load_predictor(exported, precision="onnx")


def test_a_model_runs_only_the_precisions_it_can(exported):
    pytorch = load_predictor(exported, precision="fp32").model
    session = load_predictor(exported, precision="onnx").model
    with pytest.raises(ValueError, match="load it with load_predictor"):
        resolve_precision("onnx", pytorch)
    with pytest.raises(ValueError, match="runs the onnx export only, not bf16"):
        resolve_precision("bf16", session)
    with pytest.raises(ValueError, match="runs the onnx export only, not int8"):
        resolve_precision("int8", session)
    assert resolve_precision("auto", session) == "onnx"
    assert resolve_precision("auto", load_predictor(exported, precision="int8").model) == "int8"


def test_the_session_uses_torchs_thread_count_and_stops_spinning_after_a_run(exported):
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        options = load_predictor(exported, precision="onnx").model.session.get_session_options()
    finally:
        torch.set_num_threads(threads)
    assert options.intra_op_num_threads == 2
    assert options.get_session_config_entry("session.force_spinning_stop") == "1"


# --- the products: predict.py and the web app ---------------------------------------------------

def test_predict_py_with_onnx_scores_a_file_as_fp32_does(exported, tmp_path, capsys):
    source = tmp_path / "comments.csv"
    pd.DataFrame({"id": range(len(TEXTS)), "text": TEXTS}).to_csv(source, index=False)
    scored = {}
    for precision in ("fp32", "onnx"):
        out = tmp_path / f"{precision}.csv"
        assert predict.main(["--model", str(exported), str(source), "--out", str(out), "--precision", precision,
                             "--batch-size", "4"]) == 0
        assert f"({precision}, threshold" in capsys.readouterr().err
        scored[precision] = pd.read_csv(out)
    assert scored["onnx"]["toxic_probability"].tolist() == \
        pytest.approx(scored["fp32"]["toxic_probability"].tolist(), abs=ONNX_TOLERANCE)
    assert scored["onnx"]["label"].tolist() == scored["fp32"]["label"].tolist()
    assert scored["onnx"]["id"].tolist() == list(range(len(TEXTS)))


@pytest.mark.parametrize("batching", [BatchSettings(), None], ids=["batching", "no-batching"])
def test_the_web_app_serves_the_export_and_says_so(exported, batching):
    reference = probabilities(load_predictor(exported, precision="fp32"), TEXTS)
    app, _, _ = serving_app(exported, batching=batching, torch_threads=torch.get_num_threads())
    with serve(app) as address:
        assert json.loads(fetch(address, "GET", "/health")[2])["precision"] == "onnx"
        status, reply = post_json(address, {"texts": TEXTS})
        answers = {}
        errors = call_concurrently(lambda i: answers.__setitem__(i, post_json(address, {"text": TEXTS[i]})),
                                   len(TEXTS))
        _, explained = post_json(address, {"text": TEXTS[5], "explain": True})
    assert status == 200 and errors == []
    assert [result["toxic_probability"] for result in reply["results"]] == pytest.approx(reference, abs=ONNX_TOLERANCE)
    assert [answers[i][1]["results"][0]["toxic_probability"] for i in range(len(TEXTS))] == \
        pytest.approx(reference, abs=ONNX_TOLERANCE), "each concurrent caller gets its own answer"
    assert len(explained["results"][0]["explanation"]) == len(TEXTS[5].split())


def test_a_fresh_export_is_kept_and_a_stale_one_made_again(copy_of, capsys):
    """export_for_serving, as the server runs it on first serve and bench/serving.py before it measures."""
    onnx_file = copy_of / ONNX_FILE
    fresh = onnx_file.stat().st_mtime_ns
    assert export_for_serving(copy_of) and onnx_file.stat().st_mtime_ns == fresh
    retrain(copy_of, capsys)
    assert export_for_serving(copy_of)
    assert f"python -m serving.export_onnx {copy_of}" in capsys.readouterr().err
    assert export_onnx.check_export(copy_of) == onnx_file


def test_the_server_exports_the_run_it_serves_once_on_first_serve(tmp_path, capsys, monkeypatch):
    """So a fresh clone serves ONNX Runtime after make all: auto on a CPU exports the served run, not the others."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    served, other = save_tiny_run(tmp_path / "odd"), save_tiny_run(tmp_path / "even", seed=4)
    app, predictors, name = serving_app(served, runs_dir=tmp_path, torch_threads=torch.get_num_threads())
    assert export_onnx.check_export(served, INT8_FILE) and predictors[name].precision == "onnx"
    assert not (other / ONNX_FILE).exists() and predictors["even"].precision in ("bf16", "fp32")
    assert f"exporting {served}" in capsys.readouterr().err
    serving_app(served, torch_threads=torch.get_num_threads())
    assert "exporting" not in capsys.readouterr().err, "once: the next start finds the export fresh"
    serving_app(other, precision="fp32", torch_threads=torch.get_num_threads())
    assert not (other / ONNX_FILE).exists(), "fp32 asked for: nothing to export"


def test_a_run_that_cannot_be_exported_is_served_with_pytorch(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    folder = save_tiny_run(tmp_path / "odd")
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "onnx" else real_find_spec(name, *a))
    _, predictors, name = serving_app(folder, torch_threads=torch.get_num_threads())
    assert predictors[name].precision in ("bf16", "fp32")
    warning = capsys.readouterr().err
    assert f"warning: no ONNX export of {folder}" in warning and f"pip install {REQUIREMENTS['onnx']}" in warning
