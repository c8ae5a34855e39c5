"""Run folders and resume checkpoints, each staged in a hidden folder and renamed into place: never half-written."""
import hashlib
import json
import sys
from collections.abc import Iterable
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from data.labels import ID2LABEL, LABEL2ID
from models.load import ModelError
from training.batching import MAX_LENGTH, MIN_LENGTH
from training.files import lock_file, replace_folder_atomically, staging_folder, write_json_atomically


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt, or does not belong to this run."""


class HistoryError(ModelError):
    """A run's history.json is malformed: a ``ModelError``, which every command that loads a run answers in one line."""


# The values of history.json that decide how a run is read back, and their types (``type(x) is int``: no bool).
HISTORY_ARGS = {"method": str, "seed": int, "max_length": int, "text_prefix": str}


def read_history(folder: Path) -> dict | None:
    """The run's history.json, or None when the folder has none; one ``HistoryError`` for every malformed one."""
    path = Path(folder) / "history.json"
    if not path.is_file():
        return None
    try:
        history = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise HistoryError(f"{path} is unreadable ({type(error).__name__}: {error})") from None
    if not isinstance(history, dict) or not isinstance(history.get("args", {}), dict):
        raise HistoryError(f"{path} is not a history.json written by train.py (a JSON object with an 'args' object)")
    args, threshold = history.get("args", {}), history.get("validation_threshold", 0.5)
    wrong = [f"args.{key} {args[key]!r}" for key, kind in HISTORY_ARGS.items() if key in args and type(args[key]) is not kind]
    if type(args.get("max_length")) is int and args["max_length"] < MIN_LENGTH:
        wrong.append(f"args.max_length {args['max_length']} (below {MIN_LENGTH})")
    if type(threshold) not in (int, float) or not 0 <= threshold <= 1:
        wrong.append(f"validation_threshold {threshold!r}")
    if wrong:
        raise HistoryError(f"{path} holds values train.py never writes: {', '.join(wrong)}")
    return history


def trained_max_length(history: dict | None, positions: int | None = None) -> int:
    """The ``--max-length`` the run was trained with, capped (with a warning) at the model's ``positions``."""
    max_length = ((history or {}).get("args") or {}).get("max_length", MAX_LENGTH)
    if positions is not None and max_length > positions:
        print(f"warning: history.json's max_length {max_length} is past the model's {positions} positions; "
              f"comments are cut to {positions} tokens", file=sys.stderr)
        return positions
    return max_length


def trained_text_prefix(history: dict | None) -> str:
    """The ``--text-prefix`` the run was trained with (none if its history.json records none)."""
    return ((history or {}).get("args") or {}).get("text_prefix", "")


def save_run(out_dir: Path, model, tokenizer, history: dict, extra_files: dict | None = None) -> None:
    """A plain ``save_pretrained`` folder and history.json; the config names the classes that ``pipeline`` answers."""
    out_dir = Path(out_dir)
    build = staging_folder(out_dir)
    if model is not None:  # a run that failed before it had weights worth keeping has none
        model.config.id2label, model.config.label2id = dict(ID2LABEL), dict(LABEL2ID)
        model.save_pretrained(build, safe_serialization=True)
        tokenizer.save_pretrained(build)
    for name, write in (extra_files or {}).items():  # file name -> a function that writes it (LoRA's adapter)
        write(build / name)
    write_json_atomically(build / "history.json", history)
    replace_folder_atomically(build, out_dir)


def is_failed_run(folder: Path) -> bool:
    """A folder written by ``save_failed_run``: never evaluated or served."""
    return Path(folder).name.endswith(".failed")


def save_failed_run(out_dir: Path, reason: str, history: dict, model=None, tokenizer=None,
                    extra_files: dict | None = None) -> Path:
    """Keep a failed run in ``<out_dir>.failed/`` with ``failure.json`` (the reason); the good run stays untouched."""
    folder = Path(out_dir).with_name(Path(out_dir).name + ".failed")
    failure = {"reason": reason, "run": str(out_dir), "args": history.get("args")}
    save_run(folder, model, tokenizer, history,
             {**(extra_files or {}), "failure.json": lambda path: write_json_atomically(path, failure)})
    return folder


def checkpoint_dir(out_dir: Path) -> Path:
    """Where the resume checkpoint of the run in ``out_dir`` lives."""
    return Path(out_dir).parent / ".checkpoints" / Path(out_dir).name


_CLAIMS = {}  # run folder -> the lock this process holds on it


def claim_output(out_dir: Path) -> None:
    """Refuse, before any training, an --out that is a file or a symbolic link, or that another process trains into:
    a lock beside the run's checkpoint, released when the process ends; a later run of this process takes it over.
    """
    out_dir = Path(out_dir)
    if out_dir.is_symlink() or (out_dir.exists() and not out_dir.is_dir()):
        kind = "symbolic link" if out_dir.is_symlink() else "file"
        raise CheckpointError(f"--out {out_dir} is a {kind}, not a run folder; it was left as it is: pass another --out")
    key = str(out_dir.resolve())
    if key in _CLAIMS:
        _CLAIMS.pop(key).close()
    try:
        _CLAIMS[key] = lock_file(checkpoint_dir(out_dir).with_name(f"{out_dir.name}.lock"), wait=False)
    except BlockingIOError:
        raise CheckpointError(f"another process is writing {out_dir} (train.py with the same --out?): wait for it "
                              f"to finish, or pass another --out") from None


def save_checkpoint(directory: Path, model, optimizer, scheduler, state: dict,
                    last_weights: dict[str, torch.Tensor], best_weights: dict[str, torch.Tensor]) -> None:
    """Everything needed to continue after ``state["epoch"]``; the frozen weights are rebuilt, so only fingerprinted."""
    build = staging_folder(directory)
    save_file({k: v.contiguous() for k, v in last_weights.items()}, build / "last.safetensors")
    save_file({k: v.contiguous() for k, v in best_weights.items()}, build / "best.safetensors")
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, build / "optimizer.pt")
    write_json_atomically(build / "state.json", {**state, "frozen_fingerprint": frozen_fingerprint(model)})
    replace_folder_atomically(build, directory)


def read_checkpoint_state(directory: Path) -> dict:
    """The checkpoint's state.json: epoch, best ROC-AUC, and the history with the run's arguments."""
    if not (Path(directory) / "state.json").exists():
        raise CheckpointError(f"--resume: no checkpoint in {directory}; run without --resume to start afresh.")
    try:
        return json.loads((Path(directory) / "state.json").read_text())
    except (OSError, ValueError) as error:
        raise CheckpointError(f"--resume: the checkpoint in {directory} is unreadable ({error}). "
                              f"Delete it and run without --resume.") from error


def check_same_settings(directory: Path, settings: dict, ignored: Iterable[str] = ()) -> None:
    """Refuse to resume with other settings (except ``ignored``): it would record a mixture of two runs as one."""
    saved = read_checkpoint_state(directory).get("history", {}).get("args")
    if not isinstance(saved, dict):
        raise CheckpointError(f"--resume: the checkpoint in {directory} does not record the arguments it "
                              f"was made with, so it cannot be checked; run without --resume to start afresh.")
    current = json.loads(json.dumps(settings))  # the same JSON types as the saved ones (tuples as lists)
    differences = [f"--{key.replace('_', '-')} {current.get(key)!r} (checkpoint: {saved.get(key)!r})"
                   for key in sorted((set(saved) | set(current)) - set(ignored)) if saved.get(key) != current.get(key)]
    if differences:
        raise CheckpointError(f"--resume: the checkpoint in {directory} was made with other settings: "
                              f"{'; '.join(differences)}. Resume with the checkpoint's settings, or run "
                              f"without --resume to start afresh.")


def load_checkpoint(directory: Path, model, optimizer, scheduler) -> tuple[dict, dict[str, torch.Tensor]]:
    """Restore model, optimiser and scheduler in place; return (state, best weights)."""
    directory = Path(directory)
    state = read_checkpoint_state(directory)
    try:
        last, best = load_file(directory / "last.safetensors"), load_file(directory / "best.safetensors")
        optimizer_state = torch.load(directory / "optimizer.pt", weights_only=True)  # loads data, never code
    except Exception as error:
        raise CheckpointError(f"--resume: the checkpoint in {directory} is unreadable ({error}). "
                              f"Delete it and run without --resume.") from error
    trainable = {name: p for name, p in model.named_parameters() if p.requires_grad}
    other_shapes = [f"{name} {tuple(last[name].shape)} vs {tuple(p.shape)}" for name, p in trainable.items()
                    if name in last and last[name].shape != p.shape]
    other_names = sorted(set(last) ^ set(trainable))
    difference = ("other trainable weights, e.g. " + ", ".join(other_names[:3]) if other_names else
                  "weights of other shapes, e.g. " + ", ".join(other_shapes[:3]) if other_shapes else
                  "the same trainable weights, but other frozen ones"
                  if state.get("frozen_fingerprint") != frozen_fingerprint(model) else None)
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
            digest.update(name.encode() + parameter.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()
