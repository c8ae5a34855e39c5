"""The report's way to load a run for ``evaluate.score_runs``: the TF-IDF baseline too, and each run scored once.

evaluate.py loads Hugging Face run folders only. The report also scores the TF-IDF baseline
(``baselines/tfidf.py``), and keeps every run's probabilities: they depend on the run's files, on
the comments and on the code that scores them, so they are stored in ``runs/.scores/<name>.json``
under a key made of all three, and an unchanged run is never scored again. Editing the scoring code,
retraining a run or changing the data misses the cache.
"""
import hashlib
import inspect
import json
from pathlib import Path

import numpy as np
import torch
import transformers

from baselines.tfidf import SETTINGS_FILE as TFIDF_SETTINGS_FILE, TfidfClassifier, TfidfError
from evaluate import EvaluationError, Scorer, fingerprint, load_scorer
from training.batching import encode_texts, length_bucketed_batches, make_batch, pad_batch
from training.files import write_json_atomically
from training.loop import predict_logits
from webapp.app import Predictor

SCORES_DIR = ".scores"
NOT_SCORED = ("README.md", "model.onnx", "model.int8.onnx", "model.onnx.json")  # written after scoring, or never read
SCORING_CODE = (load_scorer, Predictor, predict_logits, encode_texts, length_bucketed_batches, make_batch, pad_batch,
                TfidfClassifier)


def load_any_scorer(folder: Path, history: dict) -> Scorer:
    """A run folder as a Scorer: the TF-IDF baseline's plain-data files, or evaluate.py's Hugging Face run."""
    if (Path(folder) / TFIDF_SETTINGS_FILE).is_file():
        try:
            tfidf = TfidfClassifier.load(folder)
        except TfidfError as error:
            raise EvaluationError(str(error)) from None
        return Scorer(lambda texts, batch_size=None: tfidf.predict_proba(texts), tfidf.num_parameters)
    return load_scorer(folder, history)


def scores_key(run_folder: Path) -> str:
    """sha256 of the run's files, the scoring code and the library versions under it."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(run_folder).iterdir() if p.is_file() and p.name not in NOT_SCORED):
        digest.update(path.name.encode())
        with open(path, "rb") as file:
            for chunk in iter(lambda: file.read(1 << 20), b""):
                digest.update(chunk)
    for code in SCORING_CODE:
        digest.update(inspect.getsource(code).encode())
    digest.update(f"torch {torch.__version__} transformers {transformers.__version__}".encode())
    return digest.hexdigest()


class CachedScorer:
    """A Scorer answered from the run's stored probabilities where it can; the run is loaded on the first miss."""

    def __init__(self, folder: Path, history: dict):
        self.folder, self.history, self.scorer = Path(folder), history, None
        self.file = self.folder.parent / SCORES_DIR / f"{self.folder.name}.json"
        self.key = scores_key(self.folder)
        try:
            stored = json.loads(self.file.read_text())
            self.stored = stored if stored["key"] == self.key else {"key": self.key, "probabilities": {}}
        except (OSError, ValueError, TypeError, KeyError):
            self.stored = {"key": self.key, "probabilities": {}}

    def loaded(self) -> Scorer:
        """The run itself (for what the cache cannot answer: speed, the behaviour suite)."""
        if self.scorer is None:
            self.scorer = load_any_scorer(self.folder, self.history)
        return self.scorer

    def predict(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        texts_key = fingerprint(texts, [0] * len(texts))
        probabilities = self.stored["probabilities"].get(texts_key)
        if not isinstance(probabilities, list) or len(probabilities) != len(texts):
            probabilities = self.loaded().predict(texts).tolist()
            self.stored["probabilities"][texts_key] = probabilities
            self.stored["num_parameters"] = self.loaded().num_parameters
            write_json_atomically(self.file, self.stored)
        return np.asarray(probabilities, dtype=np.float64)

    @property
    def num_parameters(self) -> int:
        stored = self.stored.get("num_parameters")
        return stored if isinstance(stored, int) else self.loaded().num_parameters
