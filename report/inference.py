"""Toxic probabilities of a trained run on a list of comments.

Evaluation reuses the training loop's own prediction path (``training.loop.predict_logits``):
batches of comments of similar length, each padded only to its longest member, under
``torch.inference_mode()`` with ``model.eval()`` (dropout off). The numbers in the report are
therefore computed exactly as the validation numbers were during training.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from baselines.tfidf import SETTINGS_FILE as TFIDF_SETTINGS_FILE, TfidfClassifier
from models.load import load_classifier, load_tokenizer
from report import ReportError
from training.batching import encode_texts
from training.loop import EncodedSplit, predict_logits

EVAL_BATCH_SIZE = 64


def predict_toxic_probs(model, tokenizer, texts: list[str], max_length: int,
                        batch_size: int = EVAL_BATCH_SIZE) -> np.ndarray:
    """P(toxic) for each comment, in the order given: softmax over the two logits, class 1."""
    if tokenizer.pad_token_id is None:
        raise ReportError("the run's tokenizer has no pad token, so comments cannot be batched")
    token_ids = encode_texts(tokenizer, texts, max_length)
    unlabelled = EncodedSplit(token_ids=token_ids, labels=[0] * len(token_ids))  # labels are not used
    device = next(model.parameters()).device
    logits = predict_logits(model, unlabelled, tokenizer.pad_token_id, device, batch_size)
    return torch.softmax(logits, dim=-1)[:, 1].numpy().astype(np.float64)


@dataclass
class Scorer:
    """What the report needs of any trained run, neural or not: P(toxic) per comment, and its size.

    ``predict(texts, batch_size)``; the TF-IDF baseline ignores the batch size. ``model``,
    ``tokenizer`` and ``max_length`` are set for Hugging Face classifiers only (explanations
    need them), and are None for the TF-IDF baseline.
    """
    predict: Callable[[list[str], int], np.ndarray]
    num_parameters: int
    model: torch.nn.Module | None = None
    tokenizer: object | None = None
    max_length: int | None = None


def load_scorer(folder: Path, max_length: int) -> Scorer:
    """The scorer of a run folder: a Hugging Face classifier, or the TF-IDF baseline's plain-data files."""
    if (Path(folder) / TFIDF_SETTINGS_FILE).is_file():
        tfidf = TfidfClassifier.load(folder)
        return Scorer(lambda texts, batch_size=EVAL_BATCH_SIZE: tfidf.predict_proba(texts), tfidf.num_parameters)
    return classifier_scorer(load_classifier(str(folder)), load_tokenizer(str(folder)), max_length)


def classifier_scorer(model, tokenizer, max_length: int) -> Scorer:
    """The scorer of a Hugging Face sequence classifier and its tokenizer."""
    return Scorer(lambda texts, batch_size=EVAL_BATCH_SIZE: predict_toxic_probs(model, tokenizer, texts, max_length,
                                                                                batch_size),
                  sum(parameter.numel() for parameter in model.parameters()), model, tokenizer, max_length)
