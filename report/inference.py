"""What the report scores: any trained run as a ``Scorer``, P(toxic) per comment.

A Hugging Face classifier is scored by ``models.inference.toxic_probabilities``, the one
inference path that ``predict.py`` and the web app share: batches of comments of similar length,
each padded only to its longest member, under ``torch.inference_mode()`` with ``model.eval()``,
in fp32. It reuses the training loop's ``predict_logits``, so the numbers in the report are
computed exactly as the validation numbers were during training.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from baselines.tfidf import SETTINGS_FILE as TFIDF_SETTINGS_FILE, TfidfClassifier
from models.inference import EVAL_BATCH_SIZE, toxic_probabilities
from models.load import load_classifier, load_tokenizer


@dataclass
class Scorer:
    """What the report needs of any trained run, neural or not: P(toxic) per comment, and its size.

    ``predict(texts, batch_size)``; the TF-IDF baseline ignores the batch size. ``model``,
    ``tokenizer``, ``max_length`` and ``text_prefix`` are set for Hugging Face classifiers only
    (explanations need them), and are None for the TF-IDF baseline.
    """
    predict: Callable[[list[str], int], np.ndarray]
    num_parameters: int
    model: torch.nn.Module | None = None
    tokenizer: object | None = None
    max_length: int | None = None
    text_prefix: str | None = None


def load_scorer(folder: Path, max_length: int, text_prefix: str = "") -> Scorer:
    """The scorer of a run folder: a Hugging Face classifier, or the TF-IDF baseline's plain-data files.

    ``max_length`` and ``text_prefix`` are the run's own (history.json ``args``), as it was trained.
    """
    if (Path(folder) / TFIDF_SETTINGS_FILE).is_file():
        tfidf = TfidfClassifier.load(folder)
        return Scorer(lambda texts, batch_size=EVAL_BATCH_SIZE: tfidf.predict_proba(texts), tfidf.num_parameters)
    return classifier_scorer(load_classifier(str(folder)), load_tokenizer(str(folder)), max_length, text_prefix)


def classifier_scorer(model, tokenizer, max_length: int, text_prefix: str = "") -> Scorer:
    """The scorer of a Hugging Face sequence classifier and its tokenizer."""
    return Scorer(lambda texts, batch_size=EVAL_BATCH_SIZE: toxic_probabilities(
                      model, tokenizer, texts, max_length, batch_size=batch_size, text_prefix=text_prefix),
                  sum(parameter.numel() for parameter in model.parameters()), model, tokenizer, max_length, text_prefix)
