"""The real pipeline, end to end, on a small slice of the embedded assets.

The ``pipeline`` fixture (tests/conftest.py) runs every stage a user runs, only on less data
and for one epoch; these tests check what it produced.
"""
import json
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification, AutoTokenizer

pytestmark = pytest.mark.assets


def test_every_run_is_a_plain_hugging_face_folder(pipeline):
    for method in ("teacher", "odd", "lora"):
        folder = pipeline / "runs" / method
        model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
        tokenizer = AutoTokenizer.from_pretrained(folder)
        with torch.inference_mode():
            logits = model(**tokenizer(["you are an idiot"], return_tensors="pt")).logits
        assert logits.shape == (1, 2)
        history = json.loads((folder / "history.json").read_text())
        assert history["method"] == method and history["steps"] and history["epochs"]
    assert AutoModelForSequenceClassification.from_pretrained(pipeline / "runs" / "odd").config.num_hidden_layers == 6
    assert (pipeline / "runs" / "lora" / "adapter.safetensors").exists()


def test_the_teacher_learns_and_the_students_beat_chance(pipeline):
    results = json.loads((pipeline / "results" / "results.json").read_text())
    auc = {r["method"]: r["test"]["at_0.5"]["roc_auc"] for r in results["runs"]}
    assert set(auc) == {"teacher", "odd", "lora"}
    assert auc["teacher"] > 0.85, auc
    assert auc["odd"] > 0.75 and auc["lora"] > 0.6, auc
    for name in ("results.md", "training_loss.png", "roc_test.png", "test_roc_auc.png", "trade_off.png"):
        assert (pipeline / "results" / name).stat().st_size > 0


def test_the_lora_run_trained_only_a_small_share(pipeline):
    history = json.loads((pipeline / "runs" / "lora" / "history.json").read_text())
    assert history["params"]["trainable_share"] <= 0.03
    adapter = load_file(pipeline / "runs" / "lora" / "adapter.safetensors")
    b_matrices = [tensor for name, tensor in adapter.items() if name.endswith("lora_B")]
    assert b_matrices and all(tensor.abs().max() > 0 for tensor in b_matrices), \
        "the adapters trained (B starts at zero), not only the head"
