"""A run's validation and test probabilities, kept between evaluations so an unchanged run is scored once.

Scoring every run on the validation and test comments is most of ``evaluate.py``'s time, and the
same runs are evaluated again and again: after ``make all``, after each session of a multi-seed
study, after a report change. A run's probabilities depend only on its files and on the comments,
so they are stored under a key made of the sha256 of every file in the run folder (but the model
card, README.md, which evaluation itself rewrites, and the ONNX export, which evaluation does not
read) and of the two splits' fingerprints; a retrained run or other comments give another key, and are scored afresh.
The cache lives next to the runs, in a hidden ``.scores/`` folder that is never taken for a run.
"""
import hashlib
import json
from pathlib import Path

import numpy as np

from models.export_onnx import EXPORT_FILES
from training.files import write_json_atomically
from training.model_card import CARD_FILE

CACHE_DIR = ".scores"
NOT_SCORED = (CARD_FILE, *EXPORT_FILES)  # the card is written by evaluate.py after scoring; the export is not read


def scores_key(run_folder: Path, *split_fingerprints: str) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(run_folder).iterdir() if p.is_file() and p.name not in NOT_SCORED):
        digest.update(path.name.encode())
        with open(path, "rb") as file:
            for chunk in iter(lambda: file.read(1 << 20), b""):
                digest.update(chunk)
    for fingerprint in split_fingerprints:
        digest.update(fingerprint.encode())
    return digest.hexdigest()


def cache_file(run_folder: Path) -> Path:
    run_folder = Path(run_folder)
    return run_folder.parent / CACHE_DIR / f"{run_folder.name}.json"


def cached_scores(run_folder: Path, key: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(validation probabilities, test probabilities) stored under ``key``, or None."""
    try:
        stored = json.loads(cache_file(run_folder).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(stored, dict) or stored.get("key") != key:
        return None
    return np.asarray(stored["validation"], dtype=np.float64), np.asarray(stored["test"], dtype=np.float64)


def store_scores(run_folder: Path, key: str, validation: np.ndarray, test: np.ndarray) -> None:
    write_json_atomically(cache_file(run_folder), {"key": key, "validation": validation.tolist(),
                                                   "test": test.tolist()})
