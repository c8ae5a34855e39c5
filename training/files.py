"""Atomic writes: a file or folder on disk is either the old complete version or the new complete one.

Everything is first written next to its target under a hidden temporary name and then renamed
over it. A rename within one folder is atomic, so a run killed at any moment never leaves half a
file, or a half-written model folder that looks complete. Run folders, resume checkpoints, the
converted teacher, the report and the benchmark results all go through here.
"""
import json
import math
import os
import shutil
import uuid
from pathlib import Path
from typing import Callable


def write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(temporary_path)``, then move the finished file to ``path``.

    The temporary name is unique to this call (process id and a random suffix), so two processes
    writing the same file at once (two runs building one teacher-logit cache) never write into,
    or rename away, each other's temporary file: the last complete rename wins.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.partial")
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_text_atomically(path: Path, text: str) -> None:
    write_atomically(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))


def strict_json(data) -> str:
    """JSON text with NaN turned into null: NaN is not JSON, and browsers refuse to parse it."""
    def clean(value):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {key: clean(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(item) for item in value]
        return value
    return json.dumps(clean(data), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write_json_atomically(path: Path, data) -> None:
    write_text_atomically(path, strict_json(data))


def replace_folder_atomically(build: Path, final: Path) -> None:
    """Move a fully written folder ``build`` to ``final``, so ``final`` is never half-written.

    ``os.replace`` cannot swap non-empty folders, so an existing ``final`` is first renamed
    aside and removed only after the new folder is in place.
    """
    old = final.with_name(f".{final.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        os.replace(final, old)
    os.replace(build, final)
    if old.exists():
        shutil.rmtree(old)
