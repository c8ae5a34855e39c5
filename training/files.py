"""Atomic writes: write under a hidden name, then rename over the target, so a killed run never leaves half a file."""
import json
import math
import os
import shutil
import uuid
from pathlib import Path
from typing import Callable


def write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(temporary_path)``, then move the finished file to ``path``.

    The temporary name is unique to the call: two processes writing one file at once never share one; the last wins.
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


def write_json_atomically(path: Path, data) -> None:
    """Write ``data`` as JSON with NaN as null: NaN is not JSON, and browsers refuse to parse it."""
    def clean(value):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {key: clean(item) for key, item in value.items()}
        return [clean(item) for item in value] if isinstance(value, (list, tuple)) else value
    write_text_atomically(path, json.dumps(clean(data), indent=2, ensure_ascii=False, allow_nan=False) + "\n")


def replace_folder_atomically(build: Path, final: Path) -> None:
    """Move folder ``build`` to ``final``: ``os.replace`` cannot overwrite a full folder, so the old one moves aside."""
    old = final.with_name(f".{final.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        os.replace(final, old)
    os.replace(build, final)
    if old.exists():
        shutil.rmtree(old)
