"""Run folders: a saved model with its history.json, staged in a hidden folder and renamed into place (never
half-written), a failed run kept beside the good one, and the claim that keeps two processes out of one folder."""
import json
import sys
from pathlib import Path

from data.labels import ID2LABEL, LABEL2ID
from models.load import ModelError
from training.batching import MAX_LENGTH, MIN_LENGTH
from training.files import lock_file, replace_folder_atomically, staging_folder, write_json_atomically


class RunFolderError(RuntimeError):
    """The run folder cannot be written: --out is a file or a link, or another process trains into it."""


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


_CLAIMS = {}  # run folder -> the lock this process holds on it


def claim_output(out_dir: Path) -> None:
    """Refuse, before any training, an --out that is a file or a symbolic link, or that another process trains into:
    a lock in the hidden runs/.checkpoints/ (where a resumable run keeps its checkpoint), released when the process
    ends; a later run of this process takes it over.
    """
    out_dir = Path(out_dir)
    if out_dir.is_symlink() or (out_dir.exists() and not out_dir.is_dir()):
        kind = "symbolic link" if out_dir.is_symlink() else "file"
        raise RunFolderError(f"--out {out_dir} is a {kind}, not a run folder; it was left as it is: pass another --out")
    key = str(out_dir.resolve())
    if key in _CLAIMS:
        _CLAIMS.pop(key).close()
    try:
        _CLAIMS[key] = lock_file(out_dir.parent / ".checkpoints" / f"{out_dir.name}.lock", wait=False)
    except BlockingIOError:
        raise RunFolderError(f"another process is writing {out_dir} (train.py with the same --out?): wait for it "
                             f"to finish, or pass another --out") from None
