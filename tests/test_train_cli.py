"""train.py as a user runs it, on tiny random models and a tiny CSV: bad flags, failed runs.

Every test here drives ``train.main`` (or its argument parser) end to end; a whole run takes about
a second. The sections follow what docs/robustness.md promises: one-line errors, nothing lost.
"""
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

import train
from conftest import ROOT, TINY_WORDS, tiny_classifier, tiny_tokenizer
from data.load import load_splits
from distill import DistillError
from distill.teacher_logits import cache_key
from lora.lora import LoRAError, inject_lora
from models.load import ModelError, load_tokenizer
from experiments import train_extras
from evaluate import dataset_args, find_run_folders, quality_report
from training import loop
from serving.runs import find_runs
from training.batching import encode_texts
from training.loop import EncodedSplit, NonFiniteLossError
from webapp.app import Predictor

TOXIC = ["idiot", "stupid", "moron", "loser", "dumb", "hate"]
CLEAN = [word for word in TINY_WORDS if word not in TOXIC]


@pytest.fixture
def world(tmp_path, monkeypatch):
    """A working folder with a tiny CSV, a tiny 4-layer teacher run and a tiny 4-layer base model."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(240):
        words = list(rng.choice(CLEAN, rng.integers(3, 9)))
        if i % 3 == 0:
            words.insert(int(rng.integers(len(words))), str(rng.choice(TOXIC)))
        rows.append(f"{' '.join(words)},{int(i % 3 == 0)}")
    (tmp_path / "comments.csv").write_text("text,label\n" + "\n".join(rows) + "\n")
    for folder, seed in (("teacher", 0), ("base", 1)):
        save_tiny_model(tmp_path / folder, layers=4, seed=seed)
    monkeypatch.chdir(tmp_path)
    # A tiny random model learns nothing in one epoch, so every run would end "degenerate"; the
    # tests that are about that check turn it back on.
    monkeypatch.setattr(train, "is_degenerate", lambda validation: False)
    return tmp_path


def save_tiny_model(folder: Path, layers: int, seed: int) -> None:
    tiny_classifier(layers=layers, seed=seed).save_pretrained(folder)
    tiny_tokenizer().save_pretrained(folder)


def args_for(method: str, *extra: str) -> list[str]:
    """A fast, complete command line for ``method`` in the ``world`` folder."""
    return ["--method", method, "--dataset", "comments.csv", "--teacher", "teacher", "--model", "base",
            "--max-length", "16", "--batch-size", "16", "--epochs", "1", "--cache-dir", "cache", "--lr", "1e-3",
            *extra]


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in sorted(folder.rglob("*"))
            if path.is_file()}


# ---- 1. a good run is never replaced by a worse or broken one -----------------------------------

def test_epochs_0_is_refused_before_any_work_and_leaves_the_good_run_byte_identical(world, capsys):
    train.main(args_for("odd"))
    good = folder_bytes(world / "runs" / "odd")
    with pytest.raises(SystemExit) as exit_info:
        train.main(args_for("odd", "--epochs", "0"))
    assert exit_info.value.code == 2 and "--epochs" in capsys.readouterr().err
    assert folder_bytes(world / "runs" / "odd") == good


def test_a_degenerate_run_is_kept_beside_the_good_run_never_over_it(world, monkeypatch):
    train.main(args_for("odd"))
    good = folder_bytes(world / "runs" / "odd")
    monkeypatch.setattr(train, "is_degenerate", lambda validation: True)  # as if it ended constant
    with pytest.raises(train.DegenerateRunError, match=r"runs/odd\.failed/ \(see failure.json\)"):
        train.main(args_for("odd", "--seed", "1"))

    assert folder_bytes(world / "runs" / "odd") == good
    failure = json.loads((world / "runs" / "odd.failed" / "failure.json").read_text())
    assert "constant predictor" in failure["reason"] and failure["args"]["seed"] == 1
    assert (world / "runs" / "odd.failed" / "model.safetensors").is_file()  # kept for inspection
    # Neither the report nor the web app mistakes it for a result.
    assert [folder.name for folder in find_run_folders(world / "runs")] == ["odd"]
    assert list(find_runs(world / "runs")) == ["odd"]


def test_a_constant_or_chance_level_predictor_is_degenerate():
    assert train.is_degenerate({"probability_std": 1e-5, "roc_auc": 0.9})
    assert train.is_degenerate({"probability_std": 0.2, "roc_auc": 0.55})
    assert train.is_degenerate({"probability_std": 0.2, "roc_auc": float("nan")})
    assert not train.is_degenerate({"probability_std": 0.2, "roc_auc": 0.8})


def test_a_nan_run_is_kept_beside_the_good_run_and_its_error_names_what_exists(world, monkeypatch):
    train.main(args_for("teacher"))
    good = folder_bytes(world / "runs" / "teacher")

    def exploding_loss(model, batch):
        terms = loop.cross_entropy_loss(model, batch)
        return {**terms, "loss": terms["loss"] * float("nan")}

    monkeypatch.setattr(train, "cross_entropy_loss", exploding_loss)
    with pytest.raises(NonFiniteLossError) as error:
        train.main(args_for("teacher"))
    message = str(error.value)
    assert "runs/teacher.failed/history.json" in message
    assert (world / "runs" / "teacher.failed" / "history.json").is_file()
    assert "nan" in json.loads((world / "runs" / "teacher.failed" / "failure.json").read_text())["reason"]
    assert folder_bytes(world / "runs" / "teacher") == good


def test_a_run_without_a_finite_validation_auc_is_refused_not_a_key_error(world, monkeypatch):
    monkeypatch.setattr(loop, "binary_metrics", lambda labels, probs: {
        "accuracy": 0.5, "f1": 0.0, "roc_auc": float("nan"), "macro_f1": 0.0})
    with pytest.raises(train.DegenerateRunError, match="no epoch reached a finite validation ROC-AUC"):
        train.main(args_for("teacher"))
    assert not (world / "runs" / "teacher").exists() and (world / "runs" / "teacher.failed").is_dir()


# ---- 2. --resume is strict: tests/test_resume.py (python -m experiments.train_extras) ----------------


# ---- 3. and 4. flags are checked when they are parsed, in one line ------------------------------

@pytest.mark.parametrize("flag, value", [
    ("--lr", "0"), ("--lr", "nan"), ("--lr", "inf"), ("--lr", "-1e-4"), ("--lr", "fast"),
    ("--epochs", "0"), ("--batch-size", "0"), ("--limit", "0"), ("--max-length", "0"),
    ("--val-fraction", "0"), ("--val-fraction", "1"), ("--warmup-ratio", "1"), ("--lora-dropout", "1"),
    ("--lora-r", "0"), ("--temperature", "0"), ("--alpha-kd", "-0.5"), ("--seed", "-1"),
    ("--lora-targets", "query,,value"),
])
def test_a_bad_number_is_a_one_line_error_at_parse_time(flag, value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train.parse_args(["--method", "lora", flag, value])
    error = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert error.count("\n") == 1 and error.startswith("error: ") and flag in error


def test_lr_is_the_methods_default_only_when_not_given():
    assert train.parse_args(["--method", "lora"]).lr == train.RECIPES["lora"].lr
    assert train.parse_args(["--method", "lora", "--lr", "1e-7"]).lr == 1e-7


def test_all_zero_loss_weights_are_refused_at_parse_time(capsys):
    with pytest.raises(SystemExit):
        train.parse_args(["--method", "odd", "--alpha-ce", "0", "--alpha-kd", "0", "--alpha-cos", "0"])
    assert "nothing would train the student" in capsys.readouterr().err


def test_the_command_line_prints_one_line_for_a_nan_learning_rate():
    result = subprocess.run([sys.executable, "train.py", "--method", "odd", "--lr", "nan"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "--lr" in result.stderr and "Traceback" not in result.stderr


def test_lora_targets_are_stripped_and_wrap_12_layers_on_the_6_layer_student(world, capsys):
    assert train.parse_args(["--method", "lora", "--lora-targets", " query , value"]).lora_targets == "query,value"
    save_tiny_model(world / "base12", layers=12, seed=2)  # the LoRA student keeps its 6 even layers
    train.main(args_for("lora", "--model", "base12", "--lora-targets", "query, value"))
    assert "LoRA: wrapped 12 linear layers" in capsys.readouterr().out
    with safe_open(world / "runs" / "lora" / "adapter.safetensors", framework="pt") as adapter:
        assert sum(name.endswith("lora_A") for name in adapter.keys()) == 12
        assert json.loads(adapter.metadata()["targets"]) == ["query", "value"]


def test_a_lora_target_that_matches_no_linear_layer_is_an_error(world):
    with pytest.raises(LoRAError, match=r"no linear layer of an encoder layer named \['valeu'\]"):
        train.main(args_for("lora", "--lora-targets", "query,valeu"))
    model = tiny_classifier(layers=2)
    with pytest.raises(LoRAError, match=r"\[' value'\]"):
        inject_lora(model, targets=("query", " value"))


@pytest.mark.parametrize("method", ["teacher", "lora", "lora-kd"])
def test_an_unknown_model_name_fails_fast_in_one_line_for_every_method(world, monkeypatch, method):
    monkeypatch.setattr("models.load.hub_reachable", lambda: False)  # as on a machine without internet
    started = time.perf_counter()
    with pytest.raises(ModelError, match="could not load 'no-such-org/no-such-model'") as error:
        train.main(args_for(method, "--model", "no-such-org/no-such-model"))
    assert time.perf_counter() - started < 10 and "\n" not in str(error.value)
    assert not (world / "runs").exists()


def test_a_teacher_that_is_not_a_trained_folder_is_refused_before_any_work(world):
    with pytest.raises(ModelError, match="no fine-tuned teacher in missing-teacher"):
        train.main(args_for("odd", "--teacher", "missing-teacher"))


# ---- 6. correctness ---------------------------------------------------------------------------------

def test_the_served_threshold_equals_the_reports_after_bf16_training(world):
    train.main(args_for("teacher", "--bf16"))
    run = world / "runs" / "teacher"
    history = json.loads((run / "history.json").read_text())
    splits = load_splits(**dataset_args(history))
    served = Predictor.from_folder(run)
    validation_probs, test_probs = served.probabilities(splits.validation.texts), served.probabilities(splits.test.texts)
    report = quality_report(splits.validation.labels, validation_probs, splits.test.labels, test_probs)
    assert served.threshold == pytest.approx(report["validation_threshold"], abs=1e-6)


def test_lora_kd_with_another_tokenizer_than_the_teachers_learns_from_logits_on_the_teachers_tokens(world):
    # The same words, numbered in another order: every id means another word to the teacher.
    reordered = {word: index for index, word in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", *reversed(TINY_WORDS)])}
    backend = Tokenizer(models.WordLevel(reordered, unk_token="[UNK]"))
    backend.normalizer, backend.pre_tokenizer = normalizers.Lowercase(), pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]",
                                                           special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
                            sep_token="[SEP]").save_pretrained(world / "base")
    with pytest.raises(DistillError, match=r"is not the teacher's \(teacher\): 38 of 43 vocabulary entries differ"):
        train_extras.main(args_for("lora-kd", "--cos-on", "hidden"))  # the teacher would run on the student's ids
    assert not (world / "runs" / "lora-kd").exists() and not (world / "runs" / "lora-kd.failed").exists()
    train.main(args_for("lora-kd"))
    [cached] = (world / "cache" / "teacher-logits").iterdir()
    texts = load_splits("comments.csv").train.texts
    teacher_ids = EncodedSplit(encode_texts(load_tokenizer("teacher"), texts, 16), [0] * len(texts))
    assert cached.name == f"teacher-logits-{cache_key(Path('teacher'), teacher_ids)}.safetensors"


def test_max_length_beyond_the_models_positions_is_refused(world):
    with pytest.raises(ModelError, match="--max-length 100 is longer than the model's 64 positions"):
        train.main(args_for("teacher", "--max-length", "100"))
