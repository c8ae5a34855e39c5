"""The whole-pipeline multi-seed study: ``make study SEEDS=5`` (then ``python -m report``).

One training seed moves everything downstream of it: the teacher's fine-tuning, hence the soft
labels and the layers the students copy, the students' own initialisation and data order. So
each seed retrains the whole chain: ``teacher_s``, then the students and controls that start
from or learn from ``teacher_s``, then the methods that need no teacher. Seed 42 is ``make
all``'s seed: its runs in ``runs/<method>`` are reused when they were trained with the same
settings (see ``experiments/runner.py``); its controls go to ``runs/study/<method>``, and every
other seed to ``runs/study/<method>-seed<s>``. The TF-IDF baseline has no randomness (the same
data give the same model), so it is trained once and paired with every seed of the others.

    python -m experiments.study --seeds 5                 # seeds 42, 1, 2, 3, 4
    python -m experiments.study --make-all                # make all's runs only: seed 42, no controls
    python -m experiments.study --seeds 3 --dry-run       # what is done and what is left
    python -m experiments.study --seeds 2 --train-flags "--limit 64 --epochs 1 --max-length 32"
    python -m experiments.study --dataset toxic-comments --seeds 3 --methods teacher,odd,even,lora,minilm,tfidf

Another embedded dataset (``--dataset``) keeps its runs apart, in ``runs/<dataset>/<method>-seed<s>``,
with the recipes tuned on insults; ``python -m report`` scores them on their own test split.
"""
import argparse
import shlex

from experiments.runner import PlannedRun, add_jobs_argument, execute, execute_session, print_plan
from evaluate import STUDY_DIR
from data.assets import EMBEDDED_DATASETS
from train import RECIPES

FIRST_SEED = 42  # train.py's default seed, the seed of make all's runs
MAKE_ALL = ("teacher", "odd", "even", "lora", "lora-kd", "minilm", "tfidf")  # the Makefile's `all`, in order
CONTROLS = ("odd-ce", "lora-odd", "full-even", "lora-minilm")
DATASET = "insults"  # train.py's default: the dataset of make all and of the study


def study_seeds(count: int) -> list[int]:
    """``count`` training seeds: make all's 42, then 1, 2, ..."""
    return [FIRST_SEED, *range(1, count)]


def run_folder(runs_dir: str, method: str, seed: int, dataset: str = DATASET) -> str:
    if dataset != DATASET:
        return f"{runs_dir}/{dataset}/{method}-seed{seed}"
    if seed == FIRST_SEED:
        return f"{runs_dir}/{method}" if method in MAKE_ALL else f"{runs_dir}/{STUDY_DIR}/{method}"
    return f"{runs_dir}/{STUDY_DIR}/{method}-seed{seed}"


def study_run(runs_dir: str, method: str, seed: int, extra_flags: tuple[str, ...] = (),
              dataset: str = DATASET) -> PlannedRun:
    """The study's run of ``method`` at ``seed``: a student reads the teacher of its own seed."""
    flags = ["--method", method, "--seed", str(seed)]
    if dataset != DATASET:
        flags += ["--dataset", dataset]
    if RECIPES[method].needs_teacher:
        flags += ["--teacher", run_folder(runs_dir, RECIPES[method].teacher, seed, dataset)]
    return PlannedRun(run_folder(runs_dir, method, seed, dataset), (*flags, *extra_flags))


def study_plan(seed_count: int, runs_dir: str = "runs", extra_flags: tuple[str, ...] = (),
               methods: tuple[str, ...] = (*MAKE_ALL, *CONTROLS), dataset: str = DATASET) -> list[PlannedRun]:
    """Every run of the study, each seed's teachers before the runs that read them (``methods`` lists them first)."""
    return [study_run(runs_dir, method, seed, extra_flags, dataset)
            for seed in study_seeds(seed_count) for method in methods
            if RECIPES[method].start != "tfidf" or seed == FIRST_SEED]


def method_list(text: str) -> tuple[str, ...]:
    """``--methods``: comma-separated names of train.py's RECIPES, a student's teacher included."""
    methods = tuple(name.strip() for name in text.split(","))
    unknown = [name for name in methods if name not in RECIPES]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(RECIPES)}")
    for name in methods:
        teacher = RECIPES[name].teacher
        if RECIPES[name].needs_teacher and teacher not in methods[:methods.index(name)]:
            raise argparse.ArgumentTypeError(f"{name} needs its teacher: put {teacher} before it in --methods")
    return methods


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5, help="how many training seeds (default 5: 42, 1, 2, 3, 4)")
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--train-flags", default="", help="extra train.py flags for every run (smoke runs)")
    parser.add_argument("--dataset", default=DATASET, choices=list(EMBEDDED_DATASETS),
                        help="the embedded dataset to train on (default insults; another goes to runs/<dataset>/)")
    parser.add_argument("--methods", type=method_list, default=(*MAKE_ALL, *CONTROLS),
                        help="comma-separated methods (default: make all's and the controls)")
    parser.add_argument("--dry-run", action="store_true", help="list the runs, done or to do, and stop")
    parser.add_argument("--make-all", action="store_true",
                        help="only the runs of `make all` (seed 42, main methods and baselines), not timed as the study")
    add_jobs_argument(parser)
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    extra = tuple(shlex.split(args.train_flags))
    plan = ([study_run(args.runs_dir, method, FIRST_SEED, extra) for method in MAKE_ALL] if args.make_all
            else study_plan(args.seeds, args.runs_dir, extra, args.methods, args.dataset))
    if args.dry_run:
        return print_plan(plan)
    if args.make_all:
        counts = execute(plan, jobs=args.jobs)
        return print(f"make all: {counts['trained']} runs trained, {counts['skipped']} already done")
    session = execute_session(plan, args.runs_dir, STUDY_DIR if args.dataset == DATASET else args.dataset,
                              {"seeds": args.seeds, "methods": list(args.methods)}, jobs=args.jobs)
    print(f"study: {session['trained']} runs trained, {session['skipped']} already done, in "
          f"{session['wall_time_s'] / 60:.1f} min; now run `python -m report`")


if __name__ == "__main__":
    main()
