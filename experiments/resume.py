"""train.py's run with a checkpoint after every epoch, so that an interrupted run goes on where it stopped.

    python -m experiments.train_extras --method odd ...            # checkpointed after every epoch
    python -m experiments.train_extras --method odd ... --resume   # goes on after its last epoch

The run is train.py's, with the same numbers: ``train.main`` is called with an ``EpochCheckpoints``, which the
loop asks to restore its state before the first epoch and to save it after each one. The checkpoint, in
``runs/.checkpoints/<name>/``, holds the trainable weights (the last epoch's and the best epoch's), the
optimiser and scheduler state and the history so far; frozen weights (LoRA's base) are rebuilt from the flags
and only fingerprinted. Every epoch reseeds torch (``training.loop.epoch_seed``), so a resumed run draws the
dropout masks and batches that the uninterrupted one would have. ``--resume`` with other settings than the
checkpoint's is refused: it would record a mixture of two runs as one. Once the run folder is saved the
checkpoint is deleted, unless --keep-checkpoint: with its optimiser state, a fully trained model's checkpoint
is several times the size of its run folder. experiments/runner.py trains every planned run this way.
"""
import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from training.files import replace_folder_atomically, staging_folder, write_json_atomically
from training.loop import trainable_state

# Flags that change where or how fast a run goes, not what it learns, and this module's own: a run may resume
# with other values of them, and a finished run counts as done whatever they were.
NOT_RESULT_CHANGING = ("out", "resume", "keep_checkpoint", "cache_dir", "cpu", "threads")
# What training writes into the history: restored on --resume (the arguments and data sizes are the new process's).
TRAINING_RECORD = ("steps", "epochs", "best_epoch", "validation_threshold", "train_time_s", "resumed_after_epochs")


def setting_differences(recorded: dict, planned: dict) -> list[str]:
    """The names of the result-changing settings in which two runs' arguments differ.

    A value that names an existing file or folder (the teacher, a local model) is compared as that file, so the
    same teacher named by a relative and an absolute path is one setting; ``--soft-labels-from`` is a list of them.
    """
    return [key for key in sorted((set(recorded) | set(planned)) - set(NOT_RESULT_CHANGING))
            if not same_setting(recorded.get(key), planned.get(key))]


def same_setting(recorded, planned) -> bool:
    """Equal values, or comma-separated paths that name the same existing files in the same order."""
    if recorded == planned:
        return True
    if not (isinstance(recorded, str) and isinstance(planned, str)):
        return False
    recorded_paths, planned_paths = recorded.split(","), planned.split(",")
    return len(recorded_paths) == len(planned_paths) and all(
        os.path.exists(a) and os.path.exists(b) and os.path.samefile(a, b)
        for a, b in zip(recorded_paths, planned_paths))


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt, or does not belong to this run."""


def checkpoint_dir(out_dir: Path) -> Path:
    """Where the checkpoint of the run in ``out_dir`` lives: a hidden folder beside the runs, never evaluated."""
    return Path(out_dir).parent / ".checkpoints" / Path(out_dir).name


def is_main_process() -> bool:
    """Rank 0 under torchrun (which sets RANK), or a single process: the one that writes and deletes files."""
    return os.environ.get("RANK", "0") == "0"


class EpochCheckpoints:
    """The checkpoint of one run in ``directory``: saved after every epoch, restored first when ``resume``."""

    def __init__(self, directory: Path, resume: bool = False):
        self.directory, self.resume = Path(directory), resume
        self.epochs_saved = 0  # the epochs the checkpoint holds, once this process restored or saved it

    def save(self, model, optimizer, scheduler, epoch: int, best_auc: float, best_weights: dict, history: dict):
        """Everything needed to continue after ``epoch`` (0-based); the frozen weights are only fingerprinted."""
        build = staging_folder(self.directory)
        save_file({k: v.contiguous() for k, v in trainable_state(model).items()}, build / "last.safetensors")
        save_file({k: v.contiguous() for k, v in best_weights.items()}, build / "best.safetensors")
        torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, build / "optimizer.pt")
        write_json_atomically(build / "state.json", {"epoch": epoch, "best_auc": best_auc, "history": history,
                                                     "frozen_fingerprint": frozen_fingerprint(model)})
        replace_folder_atomically(build, self.directory)
        self.epochs_saved = epoch + 1

    def restore(self, model, optimizer, scheduler, history: dict) -> tuple[dict, float, int]:
        """Restore model, optimiser and scheduler in place and the training record into ``history``; return
        (the best epoch's weights, its validation ROC-AUC, the first epoch still to train, 0-based)."""
        state = read_checkpoint_state(self.directory)
        try:
            last, best = load_file(self.directory / "last.safetensors"), load_file(self.directory / "best.safetensors")
            optimizer_state = torch.load(self.directory / "optimizer.pt", weights_only=True)  # data, never code
        except Exception as error:
            raise CheckpointError(f"--resume: the checkpoint in {self.directory} is unreadable ({error}). "
                                  f"Delete it and run without --resume.") from error
        check_same_model(self.directory, state, last, model)
        model.load_state_dict(last, strict=False)
        optimizer.load_state_dict(optimizer_state["optimizer"])
        scheduler.load_state_dict(optimizer_state["scheduler"])
        history.update({key: value for key, value in state["history"].items() if key in TRAINING_RECORD})
        self.epochs_saved = state["epoch"] + 1
        history.setdefault("resumed_after_epochs", []).append(self.epochs_saved)
        if is_main_process():
            print(f"resuming after epoch {self.epochs_saved}, from {self.directory}", flush=True)
        return best, state["best_auc"], self.epochs_saved

    def kept(self) -> str:
        """What a run stopped by a non-finite loss can go on from, for its error message."""
        if not self.epochs_saved:
            return "No checkpoint of this run was saved (it failed in its first epoch)."
        return f"The last good checkpoint (after epoch {self.epochs_saved}) is in {self.directory}."


def read_checkpoint_state(directory: Path) -> dict:
    """The checkpoint's state.json: epoch, best ROC-AUC, and the history with the run's arguments."""
    if not (Path(directory) / "state.json").exists():
        raise CheckpointError(f"--resume: no checkpoint in {directory}; run without --resume to start afresh.")
    try:
        return json.loads((Path(directory) / "state.json").read_text())
    except (OSError, ValueError) as error:
        raise CheckpointError(f"--resume: the checkpoint in {directory} is unreadable ({error}). "
                              f"Delete it and run without --resume.") from error


def check_same_settings(directory: Path, settings: dict) -> None:
    """Refuse to resume with other settings (but ``NOT_RESULT_CHANGING``): it would record two runs as one."""
    saved = read_checkpoint_state(directory).get("history", {}).get("args")
    if not isinstance(saved, dict):
        raise CheckpointError(f"--resume: the checkpoint in {directory} does not record the arguments it "
                              f"was made with, so it cannot be checked; run without --resume to start afresh.")
    current = json.loads(json.dumps(settings))  # the same JSON types as the saved ones (tuples as lists)
    differences = [f"--{key.replace('_', '-')} {current.get(key)!r} (checkpoint: {saved.get(key)!r})"
                   for key in setting_differences(saved, current)]
    if differences:
        raise CheckpointError(f"--resume: the checkpoint in {directory} was made with other settings: "
                              f"{'; '.join(differences)}. Resume with the checkpoint's settings, or run "
                              f"without --resume to start afresh.")


def check_same_model(directory: Path, state: dict, last: dict, model) -> None:
    """Refuse a checkpoint of other trainable weights, other shapes or another frozen base than ``model``'s."""
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


def frozen_fingerprint(model) -> str:
    """sha256 of the names and values of the frozen parameters (LoRA's base weights)."""
    digest = hashlib.sha256()
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            digest.update(name.encode() + parameter.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()
