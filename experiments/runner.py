"""Run a plan of ``train.py`` calls, skipping the finished ones, so that a long experiment can stop and go on.

A plan is a list of ``PlannedRun``: a run folder and the ``train.py`` flags that fill it. A run
counts as done when its folder holds a ``history.json`` whose recorded arguments equal what
``train.py`` would parse from the planned flags now: the same method, data, recipe, seed and
teacher. Changing anything (a flag, a default that ``make tune`` chose) therefore trains it
again, and nothing finished is trained twice. A flag added to ``train.py`` after a run was
recorded counts at its default, so a new option does not retrain the runs made before it. A run
that was interrupted after an epoch continues from its resume checkpoint. Each run is its own
``python train.py`` process, exactly as a user would type it, and the first failure stops the plan.
"""
import json
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import train
from report.runs import SESSIONS, experiment_sessions
from training.checkpoint import CheckpointError, check_same_settings, checkpoint_dir
from training.files import write_json_atomically


@dataclass(frozen=True)
class PlannedRun:
    out: str
    flags: tuple[str, ...]  # train.py flags, --out excluded

    @property
    def argv(self) -> list[str]:
        return [*self.flags, "--out", self.out]


def planned_args(run: PlannedRun) -> dict:
    """The arguments ``train.py`` would record for this run, as history.json stores them."""
    return json.loads(json.dumps(vars(train.parse_args(run.argv))))


def is_done(run: PlannedRun) -> bool:
    """A finished run folder whose history.json records exactly the planned arguments."""
    history_file = Path(run.out) / "history.json"
    if not history_file.is_file():
        return False
    recorded = json.loads(json.dumps(train.flag_defaults())) | json.loads(history_file.read_text()).get("args", {})
    return all(recorded.get(name) == value for name, value in planned_args(run).items()
               if name not in train.NOT_RESULT_CHANGING)


def can_resume(run: PlannedRun) -> bool:
    """A resume checkpoint made with the planned settings exists (one made with others is started afresh)."""
    try:
        check_same_settings(checkpoint_dir(Path(run.out)), planned_args(run), ignored=train.NOT_RESULT_CHANGING,
                            defaults=train.flag_defaults())
    except CheckpointError:
        return False
    return True


def execute(plan: list[PlannedRun], python: str = sys.executable, stop_on_failure: bool = True) -> dict[str, int]:
    """Train every run of ``plan`` that is not done, in order; count what was trained, skipped and failed.

    A failed run stops the plan, unless ``stop_on_failure`` is False (a search, where a setting
    that fails is a result): then it is counted and the plan goes on.
    """
    counts = {"trained": 0, "skipped": 0, "failed": 0}
    for number, run in enumerate(plan, start=1):
        label = f"[{number}/{len(plan)}] {run.out}"
        if is_done(run):
            print(f"{label}: done, skipped", flush=True)
            counts["skipped"] += 1
            continue
        resume = ["--resume"] if can_resume(run) else []
        command = [python, "train.py", *run.argv, *resume]
        print(f"{label}: {shlex.join(command[1:])}", flush=True)
        result = subprocess.run(command, cwd=Path(train.__file__).resolve().parent)
        if result.returncode == 0:
            counts["trained"] += 1
        elif stop_on_failure:
            sys.exit(f"{label} failed (exit code {result.returncode}); fix it and run the same command "
                     f"again: finished runs are skipped")
        else:
            print(f"{label} failed (exit code {result.returncode}); the plan goes on", flush=True)
            counts["failed"] += 1
    return counts


def execute_session(plan: list[PlannedRun], runs_dir: str, experiment_dir: str, about: dict) -> dict:
    """``execute(plan)``, timed, with the session appended to ``runs_dir/experiment_dir/sessions.json``.

    The session's wall time includes what the runs' histories cannot: each train.py's start-up
    (imports, loading the data) and the runner. ``about`` says what the session was asked to do.
    """
    started = time.perf_counter()
    counts = execute(plan)
    session = {**about, **counts, "wall_time_s": round(time.perf_counter() - started, 1)}
    write_json_atomically(Path(runs_dir) / experiment_dir / SESSIONS,
                          [*experiment_sessions(runs_dir, experiment_dir), session])
    return session


def print_plan(plan: list[PlannedRun], estimate_minutes=None) -> None:
    """One line per run: done or to do (with ``estimate_minutes(run)`` when given), its folder and its command."""
    for run in plan:
        state = "done" if is_done(run) else "to do" if estimate_minutes is None else f"to do (≈{estimate_minutes(run):.1f} min)"
        print(f"{state}\t{run.out}\tpython train.py {shlex.join(run.argv)}")
