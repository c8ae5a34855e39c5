"""What the report reads of the runs beyond their scores: the served run, experiment sessions, training losses.

Finding and reading the runs is ``evaluate.py``'s (``find_run_folders``, ``read_run``).
"""
import json
import os
from pathlib import Path

SESSIONS = "sessions.json"  # runs/<experiment>/sessions.json: each session's wall time (experiments/runner.py)


def train_py_time_s(history: dict) -> float | None:
    """How long ``train.py`` took for the run. ``total_time_s`` is its last process's time; a resumed run's
    training loop also counts the epochs before the resume (``wall_time_s``), so its time is the larger one."""
    times = [history.get("total_time_s"), history.get("wall_time_s") if history.get("resumed_after_epochs") else None]
    return max((t for t in times if t), default=None)


def served_record(records: list[dict], best_student: dict | None) -> dict | None:
    """Of evaluate.py's run records, the one the web app and predict.py serve by default.

    That is the study's answer: the best 6-layer student (``best_student``, chosen on mean
    validation ROC-AUC over its seeds), and of its runs the one with the best validation macro-F1.
    With no best student, or none of its runs among ``records``, every run is a candidate. The
    choice uses validation scores only: choosing on test would make the test score optimistic.
    """
    students = best_student["runs"] if best_student else []
    return max(records, key=lambda record: (record.get("name") in students, record["validation"]["macro_f1"]),
               default=None)


def experiment_sessions(runs_dir: str | os.PathLike, experiment_dir: str) -> list[dict]:
    """What an experiment (``STUDY_DIR``, ``ABLATIONS_DIR``) recorded of each session: runs trained and skipped, wall time."""
    try:
        sessions = json.loads((Path(runs_dir) / experiment_dir / SESSIONS).read_text())
    except (OSError, ValueError):
        return []
    return sessions if isinstance(sessions, list) else []


def training_losses(history: dict) -> dict:
    """The final epoch's mean training cross-entropy, its mean objective, and what the objective was.

    Every method minimises cross-entropy on the labels, alone or as one term of the distillation
    loss, so the cross-entropy compares across methods; the objective does not. The final epoch is
    not always the evaluated one (the best epoch by validation ROC-AUC is), and the report says so.
    """
    last = history["epochs"][-1]
    args = history["args"]
    objective = (f"{args['alpha_ce']:g}·CE + {args['alpha_kd']:g}·KD + {args['alpha_cos']:g}·cos"
                 if "kd" in last["train_terms"] else "CE")
    return {"train_ce": last["train_terms"].get("ce"), "train_objective": last["train_loss"], "objective": objective}
