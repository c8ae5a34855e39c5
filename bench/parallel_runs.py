"""Two training runs at once on a share of the cores each, against one after the other on all of them.

    python -m bench.parallel_runs                 # two minilm runs of 1,024 examples, 1 epoch each
    python -m bench.parallel_runs --limit 64      # a quick check that it runs

The long experiments (``make tune``, ``make study``, ``make ablations``) are many independent
``train.py`` runs. ``experiments/runner.py`` can train them one at a time, each with every core
(``--jobs 1``), or several at once, each with its share of the cores (``--jobs 2``: one torch
thread each on 2 cores). One run's threads meet at the end of every operation and wait for the
slowest; small matrices, the optimiser step and the Python between operations leave cores idle.
Separate runs never wait for each other.

Both schedules train the same two runs, ``train.py --method minilm`` (a 6-layer student's shape,
no teacher needed) with seeds 1 and 2, through ``experiments.runner.execute``, in a temporary
folder; the wall times include each ``train.py``'s start-up, as in a study. A run this short may
end as a near-constant predictor, which train.py refuses; the bench counts its time all the same.
Printed: each schedule's wall time, and how much faster the parallel one is.
"""
import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.common import markdown_table, ratio, run_script
from experiments.runner import PlannedRun, execute


def two_runs(folder: Path, limit: int, epochs: int) -> list[PlannedRun]:
    return [PlannedRun(str(folder / f"minilm-seed{seed}"),
                       ("--method", "minilm", "--seed", str(seed), "--limit", str(limit), "--epochs", str(epochs)))
            for seed in (1, 2)]


@contextlib.contextmanager
def runs_print_to_stderr():
    """The runs' own lines (progress, validation) go to stderr, so that stdout holds only the figures."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def timed_schedule(jobs: int, limit: int, epochs: int) -> float:
    with tempfile.TemporaryDirectory(prefix=f"parallel-runs-jobs{jobs}-") as folder, runs_print_to_stderr():
        started = time.perf_counter()
        execute(two_runs(Path(folder), limit, epochs), stop_on_failure=False, jobs=jobs)
        return time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=1024, help="training examples per run (the first N)")
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args(argv)
    cores = os.cpu_count() or 1
    one_at_a_time = timed_schedule(1, args.limit, args.epochs)
    two_at_once = timed_schedule(2, args.limit, args.epochs)
    print(f"Two `train.py --method minilm` runs (seeds 1 and 2), {args.limit} insults training examples, "
          f"{args.epochs} epoch(s) each, start-up included; {cores} cores.\n")
    print(markdown_table(["schedule", "torch threads per run", "wall time (s)", "vs one at a time"], [
        ["one at a time (--jobs 1)", "torch's default", f"{one_at_a_time:.1f}", "1.00x"],
        ["two at once (--jobs 2)", str(max(1, cores // 2)), f"{two_at_once:.1f}", ratio(one_at_a_time, two_at_once)],
    ]))


if __name__ == "__main__":
    run_script(main)
