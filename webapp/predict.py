"""The one function the web app asks for verdicts: ``Predictor.predict(texts)``.

A trained run folder (runs/<method>/) is a plain Hugging Face ``save_pretrained`` folder, so the
app loads it with ``AutoTokenizer`` and ``AutoModelForSequenceClassification`` and needs none of
the training code. It goes through ``models.load``, which refuses a corrupt weights file,
weights that do not fit config.json and a classifier that is not two-class, each with a clear
message. From history.json it reads one number, ``validation_threshold``: the decision threshold
that maximised the toxic-class F1 on the validation split. About a quarter of the comments are
insults, so the F1-best threshold is rarely 0.5, and a web page that said "toxic" at 0.5 would
disagree with the figures in the results table.

The model is loaded once at start-up and shared by every server thread:

* the forward pass runs under ``torch.inference_mode()`` on a model in ``eval()`` mode, which
  reads the weights and writes nothing shared, so threads may run it at the same time;
* a Hugging Face fast tokenizer keeps its truncation and padding options on the shared Rust
  tokenizer and rewrites them whenever a call asks for other ones; two threads doing that at
  once fail ("Already borrowed"). Every call here asks for the same options, but a lock makes
  the safety independent of that detail, and it costs little: tokenizing a comment takes a
  fraction of a millisecond next to a forward pass of several milliseconds.
"""
import json
import math
import sys
import threading
from pathlib import Path

import torch

from explain.occlusion import Explanation, occlusion
from explain.words import encode_words
from models.load import ModelError, load_classifier, load_tokenizer
from training.checkpoint import is_failed_run

MAX_LENGTH = 128
TOXIC = "toxic"
NOT_TOXIC = "not_toxic"
TOXIC_CLASS_INDEX = 1
METHOD_ORDER = ("teacher", "odd", "even", "lora", "lora-kd")


class ModelLoadError(RuntimeError):
    """A folder that cannot be served: missing, not a classifier, or without a threshold."""


class Predictor:
    """A tokenizer, a two-class classifier and the threshold that turns its probability into a label."""

    def __init__(self, name: str, tokenizer, model: torch.nn.Module, threshold: float,
                 max_length: int = MAX_LENGTH):
        self.name = name
        self.tokenizer = tokenizer
        self.model = model.eval()
        self.threshold = check_threshold(threshold)
        self.max_length = max_length
        self._tokenizer_lock = threading.Lock()

    @classmethod
    def from_folder(cls, folder: str | Path, *, threshold: float | None = None) -> "Predictor":
        """Load a run folder; the threshold defaults to its history.json ``validation_threshold``."""
        folder = Path(folder)
        if not (folder / "config.json").is_file():
            raise ModelLoadError(
                f"{folder} is not a saved model folder (no config.json). Train one with "
                f"`python train.py --method even`, or pass the folder of a trained run.")
        if threshold is None:
            threshold = validation_threshold(folder)
        try:
            tokenizer = load_tokenizer(str(folder))
            model = load_classifier(str(folder), num_labels=2)
        except ModelError as error:
            raise ModelLoadError(f"cannot serve {folder}: {error}") from error
        return cls(folder.resolve().name, tokenizer, model, threshold)

    def predict(self, texts: list[str]) -> list[dict]:
        """One ``{"label", "toxic_probability"}`` per text; safe to call from several threads.

        Texts longer than ``max_length`` tokens are truncated, as they were in training.
        """
        if not isinstance(texts, list) or not all(isinstance(text, str) for text in texts):
            raise TypeError("predict expects a list of strings")
        if not texts:
            return []
        with self._tokenizer_lock:
            batch = self.tokenizer(texts, truncation=True, max_length=self.max_length,
                                   padding=True, return_tensors="pt")
        with torch.inference_mode():
            logits = self.model(**batch).logits
        toxic_probabilities = torch.softmax(logits.float(), dim=-1)[:, TOXIC_CLASS_INDEX].tolist()
        return [{"label": TOXIC if probability >= self.threshold else NOT_TOXIC,
                 "toxic_probability": probability}
                for probability in toxic_probabilities]

    def explain(self, text: str) -> Explanation:
        """Each word's contribution to this model's P(toxic) for ``text`` (explain/occlusion.py); thread-safe.

        Costs one batched forward pass of n + 1 comments for n words: callers bound n.
        """
        with self._tokenizer_lock:
            words = encode_words(self.tokenizer, text)
        return occlusion(self.model, self.tokenizer, words, self.max_length)


def check_threshold(threshold: float) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) \
            or not 0.0 <= threshold <= 1.0:
        raise ModelLoadError(f"the threshold must be a number between 0 and 1, got {threshold!r}")
    return float(threshold)


def validation_threshold(folder: Path) -> float:
    """The F1-best threshold that training chose on the validation split (history.json)."""
    history_file = folder / "history.json"
    try:
        history = json.loads(history_file.read_text(encoding="utf-8"))
        threshold = history["validation_threshold"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ModelLoadError(
            f"cannot read validation_threshold from {history_file} ({error!r}). "
            f"Pass a threshold explicitly (--threshold) to serve this folder anyway.") from error
    return check_threshold(threshold)


def find_runs(runs_dir: str | Path) -> list[Path]:
    """Every trained classifier under ``runs_dir`` (a folder with a history.json and a config.json), in method order.

    Hidden folders (half-written runs), ``<name>.failed`` folders (runs train.py refused to save
    as results) and runs that are not Hugging Face models (the TF-IDF baseline) are left out.
    """
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    runs = [folder for folder in runs_dir.iterdir()
            if (folder / "history.json").is_file() and (folder / "config.json").is_file()
            and not folder.name.startswith(".") and not is_failed_run(folder)]

    def method_order(folder: Path) -> tuple[int, str]:
        position = METHOD_ORDER.index(folder.name) if folder.name in METHOD_ORDER else len(METHOD_ORDER)
        return position, folder.name

    return sorted(runs, key=method_order)


def best_run(results_file: str | Path) -> Path | None:
    """The run with the highest validation macro-F1 in evaluate.py's results.json, if any.

    Reads ``runs[i].path`` and ``runs[i].validation.macro_f1`` and skips any entry that lacks
    them or whose folder is gone. The choice uses validation, never test, scores: picking the
    served model by its test score would make the test score an optimistic estimate.
    A relative path is taken from the repository root, the folder that holds results/.
    """
    results_file = Path(results_file)
    try:
        results = json.loads(results_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    runs = results.get("runs") if isinstance(results, dict) else None
    candidates = []
    for run in runs if isinstance(runs, list) else []:
        if not isinstance(run, dict) or not isinstance(run.get("path"), str) \
                or not isinstance(run.get("validation"), dict):
            continue
        macro_f1 = run["validation"].get("macro_f1")
        if isinstance(macro_f1, bool) or not isinstance(macro_f1, (int, float)) or math.isnan(macro_f1):
            continue
        folder = Path(run["path"])
        if not folder.is_absolute():
            folder = results_file.resolve().parent.parent / folder
        if (folder / "config.json").is_file():
            candidates.append((macro_f1, folder))
    return max(candidates, key=lambda candidate: candidate[0])[1] if candidates else None


def resolve_model_folder(model: str | Path | None, results_file: str | Path) -> Path:
    """``model`` if given, else the best run in results.json; a ModelLoadError says how to train one."""
    if model:
        return Path(model)
    folder = best_run(results_file)
    if folder is None:
        raise ModelLoadError(
            f"No trained model to serve: {results_file} names no run folder with a validation "
            f"macro_f1. Train and evaluate one first:\n"
            f"    python train.py --method even\n"
            f"    python evaluate.py\n"
            f"or pass the folder of a trained model with --model runs/<method>.")
    return folder


def load_predictors(model_folder: str | Path, *, threshold: float | None = None,
                    runs_dir: str | Path | None = None) -> tuple[dict[str, Predictor], str]:
    """The served model, plus every trained run under ``runs_dir`` for the compare view.

    Returns the predictors by name and the name of the served one. ``threshold`` overrides the
    served model's validation threshold only; each compared run keeps its own. The runs come in
    method order, and the served model stands in for the run with its folder name. A compared
    run that cannot be loaded is left out with a warning on stderr: one broken folder must not
    stop a server whose served model is fine (a broken served model is still an error).
    """
    served = Predictor.from_folder(model_folder, threshold=threshold)
    runs = {folder.name: folder for folder in find_runs(runs_dir)} if runs_dir else {}
    predictors = {} if served.name in runs else {served.name: served}
    for name, folder in runs.items():
        if name == served.name:
            predictors[name] = served
            continue
        try:
            predictors[name] = Predictor.from_folder(folder)
        except ModelLoadError as error:
            print(f"warning: the compare view leaves out {folder}: {error}", file=sys.stderr)
    return predictors, served.name


def set_serving_threads(torch_threads: int) -> None:
    """Give each forward pass ``torch_threads`` cores.

    A server runs one forward pass per request thread. With the PyTorch default (one intra-op
    thread per core) eight concurrent requests would start eight teams of that many threads on
    the same cores and slow each other down; one thread per pass lets the request threads share
    the cores instead. A single user sees a little more latency, which bench/load_webapp.py
    measures.
    """
    torch.set_num_threads(torch_threads)
