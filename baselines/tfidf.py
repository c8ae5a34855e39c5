"""TF-IDF features and logistic regression: the baseline a practitioner would try first.

    python -m baselines.tfidf                  # -> runs/tfidf/, on the embedded insults data
    python -m baselines.tfidf --dataset my.csv --out runs/my-tfidf

It takes train.py's data flags and writes the same history.json as train.py's runs, so the study,
``python -m report`` and the comparisons treat it as one more method (``tfidf`` in train.py's RECIPES).

Word 1-2-grams catch insulting words and short phrases ("you idiot"); character 2-5-grams catch
misspellings, obfuscations ("id1ot") and word fragments, which matter on forum comments. Both
use sublinear term frequency (1 + log tf) and keep n-grams seen in at least two training
comments. A logistic regression on the concatenated features is the classic strong baseline for
toxic-comment and insult detection (it is also what the reference figures of
``docs/embedded-assets.md`` were measured with). Its one knob, the inverse regularisation
strength C, is chosen on the validation split; the vectorisers are fitted on the training
split alone. The test split never reaches this module: ``fit_tfidf`` is not given it.

A fitted model is saved as plain data, never as a pickle: ``tfidf.json`` holds the settings and
both vocabularies (n-grams in column order), ``tfidf.safetensors`` the idf weights, the
coefficients and the intercept. ``TfidfClassifier.load`` rebuilds the same scorer from them.
"""
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from scipy.sparse import hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

import train
from data import DataError
from data.load import load_splits
from training.run_folder import save_run
from training.metrics import best_f1_threshold, binary_metrics

WORD_SETTINGS = {"analyzer": "word", "ngram_range": (1, 2), "sublinear_tf": True, "min_df": 2}
CHAR_SETTINGS = {"analyzer": "char", "ngram_range": (2, 5), "sublinear_tf": True, "min_df": 2}
C_GRID = (0.3, 1.0, 3.0, 10.0, 30.0, 100.0)  # a 3x ladder over the range where the optimum sits
SETTINGS_FILE, TENSORS_FILE = "tfidf.json", "tfidf.safetensors"
FORMAT = "distil-vs-lora-tfidf/1"


class TfidfError(ValueError):
    """A saved TF-IDF baseline is missing, corrupt or inconsistent."""


@dataclass
class TfidfClassifier:
    """Two fitted vectorisers and the logistic-regression weights over their joined features."""
    word: TfidfVectorizer
    char: TfidfVectorizer
    coef: np.ndarray   # [word features + char features]
    intercept: float
    c: float

    @property
    def num_parameters(self) -> int:
        return self.coef.size + 1

    def features(self, texts: list[str]):
        return hstack([self.word.transform(texts), self.char.transform(texts)]).tocsr()

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        """P(toxic) per comment: the logistic function of the linear score."""
        scores = self.features(texts) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-scores))

    def files(self) -> dict:
        """The model as plain data, file name -> a function that writes that file at a path (``save_run``'s extras)."""
        settings = {"format": FORMAT, "c": self.c, "intercept": self.intercept,
                    "word": {**WORD_SETTINGS, "vocabulary": _terms_in_column_order(self.word)},
                    "char": {**CHAR_SETTINGS, "vocabulary": _terms_in_column_order(self.char)}}
        tensors = {"word_idf": torch.from_numpy(self.word.idf_), "char_idf": torch.from_numpy(self.char.idf_),
                   "coef": torch.from_numpy(self.coef)}
        return {SETTINGS_FILE: lambda path: path.write_text(json.dumps(settings, ensure_ascii=False), encoding="utf-8"),
                TENSORS_FILE: lambda path: save_file(tensors, path)}

    @classmethod
    def load(cls, folder: str | os.PathLike) -> "TfidfClassifier":
        folder = Path(folder)
        try:
            settings = json.loads((folder / SETTINGS_FILE).read_text(encoding="utf-8"))
            tensors = {name: tensor.numpy() for name, tensor in load_file(folder / TENSORS_FILE).items()}
            if settings.get("format") != FORMAT:
                raise TfidfError(f"format {settings.get('format')!r}, expected {FORMAT!r}")
            word = _vectorizer(settings["word"], tensors["word_idf"])
            char = _vectorizer(settings["char"], tensors["char_idf"])
            coef = tensors["coef"]
            if coef.shape != (len(word.vocabulary_) + len(char.vocabulary_),):
                raise TfidfError(f"{coef.size} coefficients for {len(word.vocabulary_)} + "
                                 f"{len(char.vocabulary_)} features")
            return cls(word, char, coef, float(settings["intercept"]), float(settings["c"]))
        except (OSError, ValueError, KeyError, TypeError, SafetensorError) as error:
            raise TfidfError(f"{folder} does not hold a readable TF-IDF baseline "
                             f"({SETTINGS_FILE} + {TENSORS_FILE}): {error}") from error


def _terms_in_column_order(vectorizer: TfidfVectorizer) -> list[str]:
    return vectorizer.get_feature_names_out().tolist()  # sorted by column index


def _vectorizer(settings: dict, idf: np.ndarray) -> TfidfVectorizer:
    options = {key: tuple(value) if key == "ngram_range" else value
               for key, value in settings.items() if key != "vocabulary"}
    vectorizer = TfidfVectorizer(vocabulary=settings["vocabulary"], **options)
    vectorizer.idf_ = idf  # also marks the vectoriser as fitted
    return vectorizer


def fit_tfidf(train_texts: list[str], train_labels: list[int], val_texts: list[str], val_labels: list[int],
              c_grid: tuple[float, ...] = C_GRID) -> tuple[TfidfClassifier, list[dict]]:
    """Fit on train, choose C by validation ROC-AUC; return the model and every C's scores.

    The vectorisers (vocabulary and idf) see the training comments only, so the validation
    scores are honest estimates for choosing C; the test split is not an argument.
    """
    word = TfidfVectorizer(**WORD_SETTINGS).fit(train_texts)
    char = TfidfVectorizer(**CHAR_SETTINGS).fit(train_texts)
    train_features = hstack([word.transform(train_texts), char.transform(train_texts)]).tocsr()
    val_features = hstack([word.transform(val_texts), char.transform(val_texts)]).tocsr()
    search, fitted = [], {}
    for c in c_grid:
        regression = LogisticRegression(C=c, max_iter=5000).fit(train_features, train_labels)
        val_probs = regression.predict_proba(val_features)[:, 1]
        search.append({"c": c, "validation_roc_auc": binary_metrics(val_labels, val_probs)["roc_auc"]})
        fitted[c] = regression
    best_c = max(search, key=lambda row: row["validation_roc_auc"])["c"]  # the first of equals: stronger regularisation
    regression = fitted[best_c]
    return TfidfClassifier(word, char, regression.coef_[0].astype(np.float64), float(regression.intercept_[0]),
                           best_c), search


def tfidf_validation(model: TfidfClassifier, texts: list[str], labels: list[int]) -> dict:
    """The same validation record the training loop writes for the neural methods."""
    probs = model.predict_proba(texts)
    metrics = binary_metrics(labels, probs)
    metrics["loss"] = float(log_loss(labels, probs, labels=[0, 1]))
    metrics["best_f1_threshold"] = best_f1_threshold(labels, probs)
    metrics["probability_std"] = float(probs.std())
    return metrics


def training_cross_entropy(model: TfidfClassifier, texts: list[str], labels: list[int]) -> float:
    """Mean cross-entropy of the fitted model on its training comments (the table's Training Loss)."""
    return float(log_loss(labels, model.predict_proba(texts), labels=[0, 1]))


def main(argv: list[str] | None = None) -> None:
    """Fit, choose C on validation, and save a run folder; only train and validation reach ``fit_tfidf``."""
    started = time.perf_counter()
    args = train.parse_args(["--method", "tfidf", *(sys.argv[1:] if argv is None else argv)])
    splits = load_splits(args.dataset, text_column=args.text_column, label_column=args.label_column,
                         toxic_labels=args.toxic_labels.split(",") if args.toxic_labels else None,
                         val_fraction=args.val_fraction, seed=args.split_seed, cache_dir=args.cache_dir)
    splits.train.texts, splits.train.labels = splits.train.texts[:args.limit], splits.train.labels[:args.limit]
    model, search = fit_tfidf(splits.train.texts, splits.train.labels, splits.validation.texts,
                              splits.validation.labels)
    validation = tfidf_validation(model, splits.validation.texts, splits.validation.labels)
    train_ce = training_cross_entropy(model, splits.train.texts, splits.train.labels)
    wall = round(time.perf_counter() - started, 2)
    history = {"method": args.method, "args": vars(args), "layers": None, "deterministic": True,
               "data": train.split_sizes(splits),
               "params": {"total": model.num_parameters, "trainable": model.num_parameters, "trainable_share": 1.0},
               "c_search": search, "steps": [],
               "epochs": [{"epoch": 1, "train_loss": train_ce, "train_terms": {"loss": train_ce, "ce": train_ce},
                           "validation": validation, "wall_time_s": wall}],
               "best_epoch": 1, "validation_threshold": validation["best_f1_threshold"],
               "wall_time_s": wall, "total_time_s": wall}
    problem = train.why_unusable(history)
    if problem:
        raise train.DegenerateRunError(problem)
    save_run(Path(args.out), None, None, history, model.files())
    print(f"saved {args.out}/ (C={model.c:g} of {[row['c'] for row in search]}: validation ROC-AUC "
          f"{validation['roc_auc']:.4f}, macro-F1 {validation['macro_f1']:.4f}); wall time {wall:.0f} s")


if __name__ == "__main__":
    try:
        main()
    except (DataError, train.AssetError, train.DegenerateRunError, TfidfError) as error:
        sys.exit(f"error: {error}")
