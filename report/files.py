"""Atomic writes: a report file is either the old complete version or the new complete one.

Each file is written next to its target under a hidden temporary name and then renamed over
it; a rename within one folder is atomic, so an interrupted run never leaves half a file.
"""
import json
import math
import os
from pathlib import Path
from typing import Callable


def write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(temporary_path)``, then move the finished file to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.partial")
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_text_atomically(path: Path, text: str) -> None:
    write_atomically(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))


def save_figure_atomically(figure, path: Path) -> None:
    write_atomically(path, lambda temporary: figure.savefig(temporary, format="png", dpi=120))


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
