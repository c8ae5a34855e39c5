"""Atomic writes: write under a hidden name, then rename over the target, so a killed run never leaves half a file."""
import json
import math
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Callable

try:
    import fcntl
except ImportError:  # Windows has no advisory locks: concurrent writers there are the user's to avoid
    fcntl = None


def write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(temporary_path)``, then move the finished file to ``path``; the temporary name is unique to
    the call, so two processes writing one file at once never share one (the last wins)."""
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


def lock_file(path: Path, wait: bool = True):
    """The open file ``path``, holding an exclusive advisory lock until it is closed or the process ends; without
    ``wait``, a lock held by another process raises ``BlockingIOError`` at once."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a")
    try:
        if fcntl:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BaseException:
        handle.close()
        raise
    return handle


def staging_folder(final: Path) -> Path:
    """A new hidden folder beside ``final``, unique to this call, where a folder is written before it moves in;
    those left by killed processes are removed."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    for stale in final.parent.glob(f".{final.name}.partial-*-*"):
        try:
            os.kill(int(stale.name.rsplit("-", 2)[1]), 0)
        except ProcessLookupError:
            shutil.rmtree(stale, ignore_errors=True)
        except (ValueError, PermissionError):
            pass
    return Path(tempfile.mkdtemp(prefix=f".{final.name}.partial-{os.getpid()}-", dir=final.parent))


def replace_folder_atomically(build: Path, final: Path) -> None:
    """Move folder ``build`` to ``final``: ``os.replace`` cannot overwrite a full folder, so the old one moves aside.
    A lock makes concurrent swaps take turns; a ``final`` that is a file or a symbolic link is left as it is."""
    final = Path(final)
    with lock_file(final.with_name(f".{final.name}.lock")):
        if final.is_symlink() or (final.exists() and not final.is_dir()):
            shutil.rmtree(build, ignore_errors=True)
            raise FileExistsError(f"{final} is a {'symbolic link' if final.is_symlink() else 'file'}, not a folder; "
                                  f"it was left as it is")
        old = final.with_name(f".{final.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        if final.exists():
            os.replace(final, old)
        os.replace(build, final)
        shutil.rmtree(old, ignore_errors=True)
