"""The one function that turns comments into verdicts: ``Predictor.predict(texts)``.

The web app and the bulk scoring command (``predict.py``) both call it, and it computes its
probabilities with ``models.inference``, the path ``evaluate.py`` scores the test split with: a
comment gets the same probability from all three.

A trained run folder (runs/<method>/) is a plain Hugging Face ``save_pretrained`` folder, so the
app loads it with ``AutoTokenizer`` and ``AutoModelForSequenceClassification`` and needs none of
the training code. It goes through ``models.load``, which refuses a corrupt weights file,
weights that do not fit config.json and a classifier that is not two-class, each with a clear
message. From history.json it reads three settings of the run:

* ``validation_threshold``: the decision threshold that maximised the toxic-class F1 on the
  validation split. About a quarter of the comments are insults, so the F1-best threshold is
  rarely 0.5, and a web page that said "toxic" at 0.5 would disagree with the results table;
* ``args.max_length``: the length the run was trained with. Comments are truncated to it, as in
  training and evaluation (128 tokens when history.json does not say);
* ``args.text_prefix``: the text the run put in front of every comment (``--text-prefix``, e.g.
  "query: " for an e5 model; none when history.json does not say), put there again here.

The precision (``fp32``, ``bf16``, ``onnx``: ONNX Runtime on the run's export, ``auto``) is a
setting of the predictor: see ``models.inference``. ``Predictor.precision`` says which one runs,
and the web app, its ``/health`` reply and ``predict.py`` report it.

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

from data.labels import ID2LABEL
from explain.occlusion import Explanation, occlusion
from explain.words import encode_words
from models.inference import (EVAL_BATCH_SIZE, TOXIC_CLASS_INDEX, load_for_precision, probabilities_of_token_ids,
                              resolve_precision)
from models.load import ModelError, load_tokenizer
from report.runs import served_record
from training.batching import encode_texts
from training.checkpoint import (DEFAULT_MAX_LENGTH, is_failed_run, read_history, trained_max_length,
                                 trained_text_prefix)

TOXIC = ID2LABEL[TOXIC_CLASS_INDEX]
NOT_TOXIC = ID2LABEL[1 - TOXIC_CLASS_INDEX]
METHOD_ORDER = ("teacher", "odd", "even", "lora", "lora-kd")


class ModelLoadError(RuntimeError):
    """A folder that cannot be served: missing, not a classifier, or without a threshold."""


class Predictor:
    """A tokenizer, a two-class classifier and the threshold that turns its probability into a label."""

    def __init__(self, name: str, tokenizer, model: torch.nn.Module, threshold: float, *,
                 max_length: int = DEFAULT_MAX_LENGTH, text_prefix: str = "", precision: str = "auto"):
        self.name = name
        self.tokenizer = tokenizer
        self.model = model.eval()
        self.threshold = check_threshold(threshold)
        self.max_length = max_length
        self.text_prefix = text_prefix
        self.precision = resolve_precision(precision, model)
        self._tokenizer_lock = threading.Lock()

    @classmethod
    def from_folder(cls, folder: str | Path, *, threshold: float | None = None, precision: str = "auto",
                    device: str | torch.device | None = None) -> "Predictor":
        """Load a run folder with its history.json settings: ``validation_threshold``, ``max_length``, ``text_prefix``.

        ``threshold`` overrides the run's; ``device`` defaults to CUDA when there is one.
        ``precision`` ``onnx``, and ``auto`` where the folder holds a fresh ONNX export, load that
        export for ONNX Runtime instead of the PyTorch model (``models.inference.load_for_precision``).
        """
        folder = Path(folder)
        if not (folder / "config.json").is_file():
            raise ModelLoadError(
                f"{folder} is not a saved model folder (no config.json). Train one with "
                f"`python train.py --method even`, or pass the folder of a trained run.")
        history = read_history(folder)
        if threshold is None:
            threshold = validation_threshold(folder, history)
        device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        try:
            tokenizer = load_tokenizer(str(folder))
            model = load_for_precision(folder, precision, device)
        except ModelError as error:
            raise ModelLoadError(f"cannot serve {folder}: {error}") from error
        return cls(folder.resolve().name, tokenizer, model, threshold,
                   max_length=trained_max_length(history), text_prefix=trained_text_prefix(history),
                   precision=precision)

    def predict(self, texts: list[str], *, batch_size: int = EVAL_BATCH_SIZE,
                progress: bool = False) -> list[dict]:
        """One ``{"label", "toxic_probability"}`` per text; safe to call from several threads.

        Texts longer than ``max_length`` tokens are truncated, as they were in training. Many
        texts are sorted by length and scored ``batch_size`` at a time (``progress``: a tqdm bar).
        """
        if not isinstance(texts, list) or not all(isinstance(text, str) for text in texts):
            raise TypeError("predict expects a list of strings")
        if not texts:
            return []
        with self._tokenizer_lock:
            token_ids = encode_texts(self.tokenizer, texts, self.max_length, self.text_prefix)
        probabilities = probabilities_of_token_ids(self.model, token_ids, self.tokenizer, precision=self.precision,
                                                   batch_size=batch_size, progress=progress)
        return [{"label": self.label(probability), "toxic_probability": float(probability)}
                for probability in probabilities]

    def label(self, toxic_probability: float) -> str:
        """``toxic`` at or above the threshold, else ``not_toxic``."""
        return TOXIC if toxic_probability >= self.threshold else NOT_TOXIC

    def explain(self, text: str) -> Explanation:
        """Each word's contribution to this model's P(toxic) for ``text`` (explain/occlusion.py); thread-safe.

        Costs one batched forward pass of n + 1 comments for n words: callers bound n.
        """
        with self._tokenizer_lock:
            words = encode_words(self.tokenizer, text, self.text_prefix)
        return occlusion(self.model, self.tokenizer, words, self.max_length, precision=self.precision)


def check_threshold(threshold: float) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) \
            or not 0.0 <= threshold <= 1.0:
        raise ModelLoadError(f"the threshold must be a number between 0 and 1, got {threshold!r}")
    return float(threshold)


def validation_threshold(folder: Path, history: dict | None = None) -> float:
    """The F1-best threshold that training chose on the validation split (history.json, read if not given)."""
    threshold = (history or read_history(Path(folder)) or {}).get("validation_threshold")
    if threshold is None:
        raise ModelLoadError(
            f"cannot read validation_threshold from {folder / 'history.json'} (the file is missing, "
            f"unreadable or lacks it). Pass a threshold explicitly (--threshold) to use this folder anyway.")
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
    """The run to serve, from evaluate.py's results.json: the study's answer, if it has one.

    That is the best 6-layer student's run with the best validation macro-F1, chosen by
    ``report.runs.served_record``, the rule the report's Findings state, among the runs whose
    folder is on disk: the main runs and the ablations' (the best student may be an ablation
    point). Reads ``path`` and ``validation.macro_f1`` of each entry of ``runs`` and
    ``ablation_runs``, and ``best_student.runs``, and skips any entry that lacks them or whose
    folder is gone.
    A relative path is taken from the repository root, the folder that holds results/.
    """
    results_file = Path(results_file)
    try:
        results = json.loads(results_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(results, dict):
        return None
    runs = [run for key in ("runs", "ablation_runs") if isinstance(results.get(key), list) for run in results[key]]
    best_student = results.get("best_student")
    if not (isinstance(best_student, dict) and isinstance(best_student.get("runs"), list)):
        best_student = None
    candidates = []
    for run in runs:
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
            candidates.append({**run, "folder": folder})
    served = served_record(candidates, best_student)
    return served["folder"] if served else None


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
                    runs_dir: str | Path | None = None,
                    precision: str = "auto") -> tuple[dict[str, Predictor], str]:
    """The served model, plus every trained run under ``runs_dir`` for the compare view.

    Returns the predictors by name and the name of the served one. ``threshold`` overrides the
    served model's validation threshold only; each compared run keeps its own. The runs come in
    method order, and the served model stands in for the run with its folder name. A compared
    run that cannot be loaded is left out with a warning on stderr: one broken folder must not
    stop a server whose served model is fine (a broken served model is still an error). Every
    predictor runs at ``precision``.
    """
    served = Predictor.from_folder(model_folder, threshold=threshold, precision=precision)
    runs = {folder.name: folder for folder in find_runs(runs_dir)} if runs_dir else {}
    predictors = {} if served.name in runs else {served.name: served}
    for name, folder in runs.items():
        if name == served.name:
            predictors[name] = served
            continue
        try:
            predictors[name] = Predictor.from_folder(folder, precision=precision)
        except ModelLoadError as error:
            print(f"warning: the compare view leaves out {folder}: {error}", file=sys.stderr)
    return predictors, served.name


def set_serving_threads(torch_threads: int | None, batching: bool) -> None:
    """Give each forward pass ``torch_threads`` cores (default: all of them with batching, else 1).

    With request batching one worker thread runs every forward pass, so each pass can use every
    core (PyTorch's default). Without it, a server runs one forward pass per request thread:
    with PyTorch's default, eight concurrent requests would start eight teams of one thread per
    core on the same cores and slow each other down, so each pass gets one thread and the
    request threads share the cores instead. bench/serving.py measures both.
    """
    if torch_threads is not None:
        torch.set_num_threads(torch_threads)
    elif not batching:
        torch.set_num_threads(1)
