"""Atomic run folders and resumable training state.

A run folder is a plain Hugging Face ``save_pretrained`` folder plus ``history.json``, so
``AutoModelForSequenceClassification.from_pretrained(folder)`` loads it without this project.
Everything is first written into a hidden sibling folder and then moved into place with a
rename, so a run killed at any moment leaves either the previous complete folder or nothing:
never a half-written folder that looks complete.

A run that finished but is not usable (a near-constant predictor) or that stopped on a NaN is
kept for inspection in ``<name>.failed/`` beside the run folder, with ``failure.json`` saying why,
and never replaces a good run.

Between epochs the loop also writes a resume checkpoint (the trainable weights in safetensors,
optimiser and scheduler state, the history so far with the full arguments of the run) under
``<runs>/.checkpoints/<name>/``. ``--resume`` continues only with the same arguments. The optimiser
state holds only tensors and numbers, so it is read back with ``torch.load(weights_only=True)``:
nothing is ever unpickled.
"""
import hashlib
import json
import shutil
from collections.abc import Iterable
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from data.labels import ID2LABEL, LABEL2ID
from models.load import ModelError
from training.batching import MAX_LENGTH
from training.files import replace_folder_atomically, write_json_atomically


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt, or does not belong to this run."""


class HistoryError(ModelError):
    """A run folder's history.json exists but cannot be read as what train.py writes.

    A ``ModelError``: the run folder cannot be used as it is, so every command that loads a run
    (train.py's --teacher, evaluate.py, predict.py, the web app) answers it in one line.
    """


def read_history(folder: Path) -> dict | None:
    """The run's history.json (what train.py recorded), or None when the folder has none.

    Every reader of a history.json goes through here, so a malformed one (not UTF-8, not JSON, not
    a JSON object, or with ``args`` that is not an object) is one ``HistoryError`` that names it.
    """
    path = Path(folder) / "history.json"
    if not path.is_file():
        return None
    try:
        history = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise HistoryError(f"{path} is unreadable ({type(error).__name__}: {error})") from None
    if not isinstance(history, dict) or not isinstance(history.get("args", {}), dict):
        raise HistoryError(f"{path} is not a history.json written by train.py (a JSON object with an 'args' object)")
    return history


def trained_max_length(history: dict | None) -> int:
    """The ``--max-length`` the run was trained with (history.json ``args.max_length``)."""
    args = (history or {}).get("args")
    max_length = args.get("max_length") if isinstance(args, dict) else None
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 2:
        return MAX_LENGTH
    return max_length


def trained_text_prefix(history: dict | None) -> str:
    """The ``--text-prefix`` the run was trained with (history.json ``args.text_prefix``; none if not recorded)."""
    args = (history or {}).get("args")
    prefix = args.get("text_prefix") if isinstance(args, dict) else None
    return prefix if isinstance(prefix, str) else ""


def _build_folder(final: Path) -> Path:
    build = final.with_name(f".{final.name}.partial")
    if build.exists():
        shutil.rmtree(build)
    build.mkdir(parents=True)
    return build


def save_run(out_dir: Path, model, tokenizer, history: dict, extra_files: dict | None = None) -> None:
    """Write the finished run: the HF folder, its tokenizer, history.json and any extra files.

    The config names the classes (``toxic`` / ``not_toxic``), so that a plain ``pipeline`` on the
    folder answers with them. ``extra_files`` maps a file name to a function that writes that
    file at the given path (the LoRA adapter uses it), so that it moves into place together with
    the model. A model of None writes no weights (a run that failed before it had any worth
    keeping). The model card (README.md) comes with the test scores, from ``evaluate.py``.
    """
    out_dir = Path(out_dir)
    build = _build_folder(out_dir)
    if model is not None:
        model.config.id2label, model.config.label2id = dict(ID2LABEL), dict(LABEL2ID)
        model.save_pretrained(build, safe_serialization=True)
        tokenizer.save_pretrained(build)
    for name, write in (extra_files or {}).items():
        write(build / name)
    write_json_atomically(build / "history.json", history)
    replace_folder_atomically(build, out_dir)


FAILED_SUFFIX = ".failed"


def failed_run_dir(out_dir: Path) -> Path:
    """Where a failed run of ``out_dir`` is kept: ``runs/odd`` -> ``runs/odd.failed``."""
    out_dir = Path(out_dir)
    return out_dir.with_name(out_dir.name + FAILED_SUFFIX)


def is_failed_run(folder: Path) -> bool:
    """A folder written by ``save_failed_run``: never evaluated or served."""
    return Path(folder).name.endswith(FAILED_SUFFIX)


def save_failed_run(out_dir: Path, reason: str, history: dict, model=None, tokenizer=None,
                    extra_files: dict | None = None) -> Path:
    """Keep a failed run in ``<out_dir>.failed/`` with ``failure.json`` (the reason); ``out_dir`` is untouched.

    The previous good run, if any, stays where evaluate.py and the web app look for it.
    """
    folder = failed_run_dir(out_dir)
    failure = {"reason": reason, "run": str(out_dir), "args": history.get("args")}
    save_run(folder, model, tokenizer, history,
             {**(extra_files or {}), "failure.json": lambda path: write_json_atomically(path, failure)})
    return folder


def save_tfidf_run(out_dir: Path, model, history: dict) -> None:
    """Write a TF-IDF baseline run (``baselines/tfidf.py``): its plain-data files and history.json."""
    out_dir = Path(out_dir)
    build = _build_folder(out_dir)
    model.save(build)
    write_json_atomically(build / "history.json", history)
    replace_folder_atomically(build, out_dir)


def checkpoint_dir(out_dir: Path) -> Path:
    """Where the resume checkpoint of the run in ``out_dir`` lives."""
    out_dir = Path(out_dir)
    return out_dir.parent / ".checkpoints" / out_dir.name


def save_checkpoint(directory: Path, model, optimizer, scheduler, state: dict,
                    last_weights: dict[str, torch.Tensor], best_weights: dict[str, torch.Tensor]) -> None:
    """Everything needed to continue after the epoch in ``state["epoch"]``.

    The weights are the trainable ones only (``training.loop.trainable_state``). The frozen ones
    are rebuilt on resume from the same base model, and a fingerprint of them in state.json makes
    sure they really are the same.
    """
    build = _build_folder(directory)
    save_file({k: v.contiguous() for k, v in last_weights.items()}, build / "last.safetensors")
    save_file({k: v.contiguous() for k, v in best_weights.items()}, build / "best.safetensors")
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()},
               build / "optimizer.pt")
    write_json_atomically(build / "state.json", {**state, "frozen_fingerprint": frozen_fingerprint(model)})
    replace_folder_atomically(build, directory)


def read_checkpoint_state(directory: Path) -> dict:
    """The checkpoint's state.json (epoch, best ROC-AUC, history with the run's arguments)."""
    directory = Path(directory)
    if not (directory / "state.json").exists():
        raise CheckpointError(f"--resume: no checkpoint in {directory}; run without --resume to start afresh.")
    try:
        return json.loads((directory / "state.json").read_text())
    except (OSError, ValueError) as error:
        raise CheckpointError(f"--resume: the checkpoint in {directory} is unreadable ({error}). "
                              f"Delete it and run without --resume.") from error


def check_same_settings(directory: Path, settings: dict, ignored: Iterable[str] = ()) -> None:
    """Refuse, in one line naming every difference, to resume a checkpoint made with other settings.

    ``settings`` are this run's arguments (``vars(args)``); ``ignored`` are those that do not
    change the result (the output folder, the thread count). Resuming with another learning
    rate, method or seed would train a mixture of two runs and record it as one of them.
    """
    saved = read_checkpoint_state(directory).get("history", {}).get("args")
    if not isinstance(saved, dict):
        raise CheckpointError(f"--resume: the checkpoint in {directory} does not record the arguments it "
                              f"was made with, so it cannot be checked; run without --resume to start afresh.")
    current = json.loads(json.dumps(settings))  # the same JSON types as the saved ones (tuples as lists)
    ignored = set(ignored)
    differences = [f"--{key.replace('_', '-')} {current.get(key)!r} (checkpoint: {saved.get(key)!r})"
                   for key in sorted(set(saved) | set(current))
                   if key not in ignored and saved.get(key) != current.get(key)]
    if differences:
        raise CheckpointError(f"--resume: the checkpoint in {directory} was made with other settings: "
                              f"{'; '.join(differences)}. Resume with the checkpoint's settings, or run "
                              f"without --resume to start afresh.")


def load_checkpoint(directory: Path, model, optimizer, scheduler) -> tuple[dict, dict[str, torch.Tensor]]:
    """Restore model, optimiser and scheduler in place; return (state, best weights)."""
    directory = Path(directory)
    state = read_checkpoint_state(directory)
    try:
        last = load_file(directory / "last.safetensors")
        best = load_file(directory / "best.safetensors")
        optimizer_state = torch.load(directory / "optimizer.pt", weights_only=True)
    except Exception as error:
        raise CheckpointError(f"--resume: the checkpoint in {directory} is unreadable ({error}). "
                              f"Delete it and run without --resume.") from error
    trainable = {name: p for name, p in model.named_parameters() if p.requires_grad}
    other_shapes = [f"{name} {tuple(last[name].shape)} vs {tuple(p.shape)}" for name, p in trainable.items()
                    if name in last and last[name].shape != p.shape]
    if set(last) != set(trainable):
        difference = "other trainable weights, e.g. " + ", ".join(sorted(set(last) ^ set(trainable))[:3])
    elif other_shapes:
        difference = "weights of other shapes, e.g. " + ", ".join(other_shapes[:3])
    elif state.get("frozen_fingerprint") != frozen_fingerprint(model):
        difference = "the same trainable weights, but other frozen ones"
    else:
        difference = None
    if difference:
        raise CheckpointError(f"--resume: the checkpoint in {directory} belongs to a different model "
                              f"({difference}). Resume with the same --method and --model.")
    model.load_state_dict(last, strict=False)
    optimizer.load_state_dict(optimizer_state["optimizer"])
    scheduler.load_state_dict(optimizer_state["scheduler"])
    return state, best


def frozen_fingerprint(model) -> str:
    """sha256 of the names and values of the frozen parameters (LoRA's base weights)."""
    digest = hashlib.sha256()
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            digest.update(name.encode())
            digest.update(parameter.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()
