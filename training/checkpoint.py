"""Atomic run folders and resumable training state.

A run folder is a plain Hugging Face ``save_pretrained`` folder plus ``history.json``, so
``AutoModelForSequenceClassification.from_pretrained(folder)`` loads it without this project.
Everything is first written into a hidden sibling folder and then moved into place with a
rename, so a run killed at any moment leaves either the previous complete folder or nothing:
never a half-written folder that looks complete.

Between epochs the loop also writes a resume checkpoint (model weights in safetensors, optimiser
and scheduler state, the history so far) under ``<runs>/.checkpoints/<name>/``. The optimiser
state holds only tensors and numbers, so it is read back with ``torch.load(weights_only=True)``:
nothing is ever unpickled.
"""
import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from embedded.pypi import replace_folder_atomically


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt, or does not belong to this run."""


def _build_folder(final: Path) -> Path:
    build = final.with_name(f".{final.name}.partial")
    if build.exists():
        shutil.rmtree(build)
    build.mkdir(parents=True)
    return build


def write_json(path: Path, data: dict) -> None:
    """Write JSON through a temporary file and a rename."""
    temporary = path.with_name(f".{path.name}.partial")
    temporary.write_text(json.dumps(data, indent=2) + "\n")
    temporary.replace(path)


def save_run(out_dir: Path, model, tokenizer, history: dict, extra_files: dict | None = None) -> None:
    """Write the finished run: the HF folder, its tokenizer, history.json and any extra files.

    ``extra_files`` maps a file name to a function that writes that file at the given path
    (the LoRA adapter uses it), so that it moves into place together with the model.
    """
    out_dir = Path(out_dir)
    build = _build_folder(out_dir)
    model.save_pretrained(build, safe_serialization=True)
    tokenizer.save_pretrained(build)
    for name, write in (extra_files or {}).items():
        write(build / name)
    write_json(build / "history.json", history)
    replace_folder_atomically(build, out_dir)


def checkpoint_dir(out_dir: Path) -> Path:
    """Where the resume checkpoint of the run in ``out_dir`` lives."""
    out_dir = Path(out_dir)
    return out_dir.parent / ".checkpoints" / out_dir.name


def save_checkpoint(directory: Path, model, optimizer, scheduler, state: dict,
                    best_weights: dict[str, torch.Tensor]) -> None:
    """Everything needed to continue after the epoch in ``state["epoch"]``."""
    build = _build_folder(directory)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, build / "last.safetensors")
    save_file({k: v.contiguous() for k, v in best_weights.items()}, build / "best.safetensors")
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()},
               build / "optimizer.pt")
    write_json(build / "state.json", state)
    replace_folder_atomically(build, directory)


def load_checkpoint(directory: Path, model, optimizer, scheduler) -> tuple[dict, dict[str, torch.Tensor]]:
    """Restore model, optimiser and scheduler in place; return (state, best weights)."""
    directory = Path(directory)
    if not (directory / "state.json").exists():
        raise CheckpointError(f"--resume: no checkpoint in {directory}; run without --resume to start afresh.")
    try:
        state = json.loads((directory / "state.json").read_text())
        last = load_file(directory / "last.safetensors")
        best = load_file(directory / "best.safetensors")
        optimizer_state = torch.load(directory / "optimizer.pt", weights_only=True)
    except Exception as error:
        raise CheckpointError(f"--resume: the checkpoint in {directory} is unreadable ({error}). "
                              f"Delete it and run without --resume.") from error
    missing, unexpected = model.load_state_dict(last, strict=False)
    if missing or unexpected:
        raise CheckpointError(f"--resume: the checkpoint in {directory} belongs to a different model "
                              f"(missing {list(missing)[:3]}, unexpected {list(unexpected)[:3]}).")
    optimizer.load_state_dict(optimizer_state["optimizer"])
    scheduler.load_state_dict(optimizer_state["scheduler"])
    return state, best
