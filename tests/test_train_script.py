"""train.py end to end on a tiny random teacher and a tiny CSV: the right layers, and LoRA adapters that learn.

Each run is one in-process ``train.main`` of one epoch on about 70 comments, so the whole file
takes seconds. The tiny models learn little, so the degenerate-run guard (which train.py raises
after saving) is switched off here: these tests check which weights go where, not quality.
"""
import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification

import train
from conftest import tiny_classifier, tiny_tokenizer
from distill.student import build_student_from_base
from serving.adapter import apply_adapter, load_adapter
from test_evaluate import tiny_split

TEACHER_LAYERS = 4
ODD, EVEN = [1, 3], [2, 4]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A 4-layer teacher folder (also the LoRA base) and a 90-comment CSV with a few insults in it."""
    root = tmp_path_factory.mktemp("train-script")
    tiny_classifier(layers=TEACHER_LAYERS, seed=7).save_pretrained(root / "teacher")
    tiny_tokenizer().save_pretrained(root / "teacher")
    comments = tiny_split(90, seed=5)
    (root / "comments.csv").write_text(
        "text,label\n" + "".join(f"{text},{label}\n" for text, label in zip(comments.texts, comments.labels)))
    return root


@pytest.fixture(autouse=True)
def no_degenerate_guard(monkeypatch):
    monkeypatch.setattr(train, "is_degenerate", lambda validation: False)


def train_tiny(workspace, name: str, *flags: str):
    out = workspace / "runs" / name
    train.main([*flags, "--out", str(out), "--dataset", str(workspace / "comments.csv"),
                "--teacher", str(workspace / "teacher"), "--model", str(workspace / "teacher"),
                "--cache-dir", str(workspace / "cache"), "--epochs", "1", "--batch-size", "16",
                "--max-length", "16", "--no-bf16", "--cpu"])
    return out, json.loads((out / "history.json").read_text())


def layer_weights(state: dict, prefix: str = "bert.") -> list[torch.Tensor]:
    """Per encoder layer, the weights that neither distillation's few steps nor LoRA move much: FFN in."""
    return [state[f"{prefix}encoder.layer.{i}.intermediate.dense.weight"] for i in range(TEACHER_LAYERS)
            if f"{prefix}encoder.layer.{i}.intermediate.dense.weight" in state]


def nearest_teacher_layers(student_dir, teacher_dir) -> list[int]:
    """For each student layer, the 1-based teacher layer whose weights are closest to it."""
    student = load_file(student_dir / "model.safetensors")
    teacher = layer_weights(load_file(teacher_dir / "model.safetensors"))
    return [1 + min(range(len(teacher)), key=lambda t: (weight - teacher[t]).norm().item())
            for weight in layer_weights(student)]


@pytest.mark.parametrize("method, layers", [("odd", ODD), ("even", EVEN)])
def test_a_distilled_student_holds_the_teacher_layers_its_method_names(workspace, method, layers):
    out, history = train_tiny(workspace, method, "--method", method)
    assert history["layers"] == layers
    assert history["args"]["method"] == method
    assert nearest_teacher_layers(out, workspace / "teacher") == layers


@pytest.mark.parametrize("init, layers", [("odd", ODD), ("even", EVEN)])
def test_a_lora_student_starts_from_the_base_layers_it_was_given(workspace, init, layers):
    out, history = train_tiny(workspace, f"lora-{init}", "--method", "lora", "--layers", init)
    assert history["layers"] == layers
    assert load_adapter(out / "adapter.safetensors")[1]["layers"] == layers
    student, teacher = load_file(out / "model.safetensors"), load_file(workspace / "teacher" / "model.safetensors")
    for slot, layer in enumerate(layers):  # LoRA freezes the encoder: the copied layers stay exact
        for part in ("intermediate.dense.weight", "attention.self.key.weight"):
            torch.testing.assert_close(student[f"bert.encoder.layer.{slot}.{part}"],
                                       teacher[f"bert.encoder.layer.{layer - 1}.{part}"], rtol=0, atol=0)


def test_lora_adapters_learn_and_base_plus_adapter_is_the_merged_model(workspace):
    out, history = train_tiny(workspace, "lora", "--method", "lora", "--layers", "even", "--lr", "1e-3")
    state, meta = load_adapter(out / "adapter.safetensors")
    b_matrices = {name: tensor for name, tensor in state.items() if name.endswith("lora_B")}
    assert len(b_matrices) == 2 * len(EVEN), "query and value in every layer"
    assert all(tensor.abs().max() > 1e-4 for tensor in b_matrices.values()), "B starts at 0 and must have trained"

    torch.manual_seed(0)  # whatever the new head's random init, the adapter file overwrites it
    rebuilt = apply_adapter(build_student_from_base(str(workspace / "teacher"), meta["layers"]).model, state, meta)
    merged = AutoModelForSequenceClassification.from_pretrained(out)
    ids = tiny_tokenizer()(["you are an idiot", "thanks for the thoughtful reply"], padding=True,
                           return_tensors="pt")
    with torch.inference_mode():
        expected, actual = rebuilt.eval()(**ids).logits, merged.eval()(**ids).logits
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)
    assert history["params"]["trainable"] < history["params"]["total"] / 2


def test_a_teacher_of_another_architecture_teaches_through_its_logits_read_with_its_own_tokenizer(workspace):
    """minilm-kd's setting: an MPNet teacher (no token types, relative positions) and a BERT student. No layer
    can pass between them, so the teacher's logits, on its own tokens of each comment, are all that does."""
    from transformers import MPNetConfig, MPNetForSequenceClassification
    torch.manual_seed(3)
    mpnet = MPNetForSequenceClassification(MPNetConfig(
        vocab_size=len(tiny_tokenizer().get_vocab()) + 2, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64, num_labels=2, pad_token_id=0))
    mpnet.save_pretrained(workspace / "mpnet")
    tiny_tokenizer(lowercase=False).save_pretrained(workspace / "mpnet")  # tokens of its own: case kept
    assert train.parse_args(["--method", "minilm-kd"]).teacher == "runs/teacher-strong"

    def run(method: str, *flags: str):
        train.main(["--method", method, "--out", str(workspace / "runs" / method), *flags,
                    "--dataset", str(workspace / "comments.csv"), "--cache-dir", str(workspace / "cache"),
                    "--epochs", "1", "--batch-size", "16", "--max-length", "16", "--no-bf16", "--cpu"])
        return workspace / "runs" / method
    teacher_out = run("teacher-strong", "--model", str(workspace / "mpnet"))
    assert AutoModelForSequenceClassification.from_pretrained(teacher_out).config.model_type == "mpnet"
    out = run("minilm-kd", "--teacher", str(teacher_out), "--model", str(workspace / "teacher"))
    history = json.loads((out / "history.json").read_text())
    assert history["args"]["teacher"] == str(teacher_out) and history["layers"] is None
    assert all(step["kd"] > 0 for step in history["steps"]), "the soft labels trained the student"
    assert AutoModelForSequenceClassification.from_pretrained(out).config.model_type == "bert"

    args = train.parse_args(["--method", "minilm-kd", "--max-length", "16", "--cache-dir", str(workspace / "cache")])
    teacher = AutoModelForSequenceClassification.from_pretrained(teacher_out).eval()
    texts = ["You Idiot", "you idiot"]
    env = train.init_distributed(force_cpu=True)
    logits = train.teacher_soft_labels(str(teacher_out), teacher, texts, args, env)
    tokens = train.load_tokenizer(str(teacher_out))(texts, truncation=True, max_length=16, padding=True,
                                                   return_tensors="pt")
    with torch.no_grad():
        expected = teacher(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"]).logits
    torch.testing.assert_close(logits, expected)
    assert not torch.equal(logits[0], logits[1]), "the teacher's own tokenizer keeps the case the student's drops"
