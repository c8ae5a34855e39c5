"""Run a plan of ``train.py`` calls, skipping the finished ones, so that a long experiment can stop and go on.

A plan is a list of ``PlannedRun``: a run folder and the ``train.py`` flags that fill it. A run
counts as done when its folder holds a ``history.json`` whose recorded arguments equal what
``train.py`` would parse from the planned flags now: the same method, data, recipe, seed and
teacher. Changing anything (a flag, a default that ``make tune`` chose) therefore trains it
again, and nothing finished is trained twice. A flag added to ``train.py`` after a run was
recorded counts at its default, so a new option does not retrain the runs made before it. Each run is
its own ``python -m experiments.train_extras`` process, train.py's run with a checkpoint after every epoch, as a
user would type it, so a run that was interrupted after an epoch continues from its checkpoint
(``--resume``). The first failure stops the plan; ``jobs`` > 1 trains that many at once.
"""
import argparse
import json
import math
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import train
from experiments import train_extras
from experiments.resume import CheckpointError, check_same_settings, checkpoint_dir, setting_differences
from report.runs import SESSIONS, experiment_sessions
from training.files import write_json_atomically


@dataclass(frozen=True)
class PlannedRun:
    out: str
    flags: tuple[str, ...]  # train.py flags, --out excluded

    @property
    def argv(self) -> list[str]:
        return [*self.flags, "--out", self.out]


def planned_args(run: PlannedRun) -> dict:
    """The arguments the run would record (train.py's and the extras'), as history.json stores them."""
    return json.loads(json.dumps(vars(train_extras.parse_args(run.argv)[1])))


def is_done(run: PlannedRun) -> bool:
    """A finished run folder whose history.json records exactly the planned arguments; a run of train.py alone,
    which records none of the extras' flags, trained with them at their defaults."""
    history_file = Path(run.out) / "history.json"
    if not history_file.is_file():
        return False
    recorded = {**train_extras.extra_flag_defaults(), **json.loads(history_file.read_text()).get("args", {})}
    planned = planned_args(run)
    return not setting_differences({name: recorded.get(name) for name in planned}, planned)


def can_resume(run: PlannedRun) -> bool:
    """A resume checkpoint made with the planned settings exists (one made with others is started afresh)."""
    try:
        check_same_settings(checkpoint_dir(Path(run.out)), planned_args(run))
    except CheckpointError:
        return False
    return True


def add_jobs_argument(parser: argparse.ArgumentParser) -> None:
    """``--jobs N`` for a command that runs a plan: how many runs ``execute`` trains at once."""
    parser.add_argument("--jobs", type=train.positive_int, default=1,
                        help="runs trained at once, each on its share of the cores (default 1; see experiments/runner.py)")


def threads_per_run(jobs: int) -> int | None:
    """The torch threads ``execute`` gives each run when ``jobs`` train at once (None: train.py's default)."""
    return max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None


def reads_from(run: PlannedRun, folder: str) -> bool:
    """Whether ``run`` reads another run's folder: as its ``--teacher`` or one of ``--soft-labels-from``."""
    return any(folder in value.split(",") for value in run.flags)


def execute(plan: list[PlannedRun], python: str = sys.executable, stop_on_failure: bool = True,
            jobs: int = 1) -> dict[str, int]:
    """Train every run of ``plan`` that is not done; count what was trained, skipped and failed.

    With ``jobs`` 1 the runs go one after another, in order, each printing to this console. With
    more, up to ``jobs`` runs train at once, each with ``cpu_count // jobs`` torch threads (a run
    left to train alone at the end of a plan gets them all) and its output in ``<run>.log``; a run starts only once every planned run whose folder it reads
    (its teacher) has finished, and the runs that others read start first, so that the students
    of the last teacher are not all left to the end. Several single-threaded runs keep the cores
    busier than one run whose threads wait for each other at every operation
    (bench/parallel_runs.py measures it).
    A failed run stops the plan (the runs under way finish first), unless ``stop_on_failure`` is
    False (a search, where a setting that fails is a result): then it is counted and the plan goes on.
    """
    counts = {"trained": 0, "skipped": 0, "failed": 0}
    waiting = []
    for number, run in enumerate(plan, start=1):
        label = f"[{number}/{len(plan)}] {run.out}"
        if is_done(run):
            print(f"{label}: done, skipped", flush=True)
            counts["skipped"] += 1
        else:
            waiting.append((label, run))
    if jobs > 1:
        planned = [run for _, run in waiting]
        waiting.sort(key=lambda item: not any(reads_from(other, item[1].out) for other in planned))
    running: dict[subprocess.Popen, tuple[str, PlannedRun]] = {}
    stopping = False
    while waiting or running:
        unfinished = [run.out for _, run in waiting] + [run.out for _, run in running.values()]
        for label, run in list(waiting):
            if stopping or len(running) >= jobs:
                break
            if any(reads_from(run, folder) for folder in unfinished):
                continue
            waiting.remove((label, run))
            # the cores are shared by the runs that will train together: at the end of a plan, fewer
            beside = min(jobs, len(running) + len(waiting) + 1)
            threads = ["--threads", str(threads_per_run(beside) or os.cpu_count() or 1)] if jobs > 1 else []
            running[start_run(run, label, python, threads if "--threads" not in run.flags else [])] = (label, run)
        if not running:
            sys.exit(f"the plan is out of order: {waiting[0][1].out} reads a run planned after it")
        process = wait_for_any(running)
        label, run = running.pop(process)
        if process.returncode == 0:
            counts["trained"] += 1
            if jobs > 1:
                print(f"{label}: finished", flush=True)
            continue
        counts["failed"] += 1
        log = f" (its output: {run.out}.log)" if jobs > 1 else ""
        if stop_on_failure:
            print(f"{label} failed (exit code {process.returncode}){log}; waiting for the runs under way", flush=True)
            stopping, waiting = True, []
        else:
            print(f"{label} failed (exit code {process.returncode}){log}; the plan goes on", flush=True)
    if stopping:
        sys.exit("a run failed; fix it and run the same command again: finished runs are skipped")
    return counts


def script_of(run: PlannedRun) -> list[str]:
    """``-m experiments.train_extras`` (train.py, resumable), or ``-m baselines.tfidf`` for the TF-IDF baseline, which
    has no network to train."""
    tfidf = train.RECIPES[planned_args(run)["method"]].start == "tfidf"
    return ["-m", "baselines.tfidf"] if tfidf else ["-m", "experiments.train_extras"]


def start_run(run: PlannedRun, label: str, python: str, threads: list[str]) -> subprocess.Popen:
    """The run's process (``--resume`` when it was interrupted), printing to this
    console, or to ``<run>.log`` when other runs train beside it (``threads`` given)."""
    command = [python, *script_of(run), *run.argv, *threads, *(["--resume"] if can_resume(run) else [])]
    print(f"{label}: {shlex.join(command[1:])}" + (f" > {run.out}.log" if threads else ""), flush=True)
    output = None
    if threads:
        Path(run.out).parent.mkdir(parents=True, exist_ok=True)
        output = open(f"{run.out}.log", "w")
    try:
        return subprocess.Popen(command, cwd=Path(train.__file__).resolve().parent, stdout=output,
                                stderr=subprocess.STDOUT if output else None)
    finally:
        if output:
            output.close()  # the child holds its own copy of the file


def wait_for_any(running: dict[subprocess.Popen, tuple]) -> subprocess.Popen:
    """The first of the running processes to exit."""
    while True:
        for process in running:
            if process.poll() is not None:
                return process
        time.sleep(0.5)


def execute_session(plan: list[PlannedRun], runs_dir: str, experiment_dir: str, about: dict, jobs: int = 1) -> dict:
    """``execute(plan, jobs=jobs)``, timed, with the session appended to ``runs_dir/experiment_dir/sessions.json``.

    The session's wall time includes what the runs' histories cannot: each train.py's start-up
    (imports, loading the data) and the runner. ``about`` says what the session was asked to do.
    """
    started = time.perf_counter()
    counts = execute(plan, jobs=jobs)
    session = {**about, **counts, "jobs": jobs, "wall_time_s": round(time.perf_counter() - started, 1)}
    write_json_atomically(Path(runs_dir) / experiment_dir / SESSIONS,
                          [*experiment_sessions(runs_dir, experiment_dir), session])
    return session


def print_plan(plan: list[PlannedRun], estimate_minutes=None) -> None:
    """One line per run: done or to do (with ``estimate_minutes(run)`` when given), its folder and its command."""
    for run in plan:
        if is_done(run):
            state = "done"
        elif estimate_minutes is None:
            state = "to do"
        else:
            minutes = estimate_minutes(run)
            state = "to do (no recorded run to estimate from)" if math.isnan(minutes) else f"to do (≈{minutes:.1f} min)"
        print(f"{state}\t{run.out}\tpython {shlex.join([*script_of(run), *run.argv])}")
