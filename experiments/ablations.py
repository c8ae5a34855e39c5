"""The ablations: ``make ablations`` (then ``python -m report``), each a question one flag answers.

- **Layer choice**: the distilled student, default recipe, with other teacher layers (the named
  sets of ``distill/student.py``): odd and even (``make all``'s), bottom {1-6}, top {7-12},
  DistilBERT's {1,3,5,8,10,12}, and Sajjad et al.'s symmetric {1,2,3,10,11,12}.
- **LoRA capacity**: rank 2, 8 (``make all``'s lora) and 32 on query and value; every linear layer
  of the encoder at rank 8; rank 32 with the rank-stabilised scaling α/√r (rsLoRA).
- **Transfer set**: the odd student also trained on the archive's unlabelled comments
  (``--transfer-set insults-unlabelled``), against the odd student without them.
- **Teacher signal**: the odd student distilled from the averaged logits of the study's three
  teachers (their layers still from its own seed's teacher); the teacher and the odd student both
  trained with the ``query: `` prefix e5 was trained with; and, on request (``--seeds
  ensemble-transfer-odd=1``), the two changes that add inputs and better labels together.
- **A stronger teacher**, on request only (``make strong-teacher``): ``teacher-strong`` (all-mpnet-base-v2,
  above minilm where the e5 teacher is below it) teaches through its soft labels alone. Each student is
  compared with the same student without them: the odd student (its layers still from the e5 teacher)
  with ``odd-ce``, minilm distilled (``minilm-kd``) with ``minilm``, LoRA with ``lora``; and the first two
  again with the transfer set, against themselves without it. A point of this family is planned only when
  ``--seeds`` names it or the family: ``all`` leaves it out.

Every point is an ordinary ``train.py`` run: a point that equals a run of ``make all`` or ``make
study`` (odd, even, lora, each seed's teacher) reuses it, through ``experiments/runner.py``, which
skips a run whose recorded arguments equal the planned ones; the others go to
``runs/ablations/<point>`` (seed 42) and ``runs/ablations/<point>-seed<s>``. A student of seed s
reads the teacher of seed s, so every point pairs seed by seed with the study's runs. It needs
``make study`` first (the ensemble reads the teachers of seeds 42, 1 and 2); a missing prerequisite is
trained first, with the study's arguments. Resumable, like the study.

Seeds: a point has 3 seeds where the budget of ``make ablations`` (``BUDGET_MINUTES`` on 2 CPU
cores, ``python -m report`` after it not counted) allows, else 1 (seed 42), which the report
labels single-seed. Every point gets 1; then the transfer set and the ensemble teacher, the two
changes that may lift the best student, get 3 each, in that order, if the whole plan's time,
estimated from the runs already recorded (``fitted_seeds``) and shared among ``--jobs`` runs at
once, stays within the budget. How many fit depends on this machine and on the epochs ``make
tune`` gave LoRA: a teacher takes 6-7 minutes here on 2 threads, a distilled student 4-5, a
student with the transfer set about 1.6 times that.
The combination of both is left out unless asked for. ``--dry-run`` shows the choice, the
estimate and what is left. ``--seeds`` sets the counts instead: ``--seeds 1`` for every point,
``--seeds transfer=1,layers=3`` per family or point, 0 to leave one out.

    python -m experiments.ablations                  # train what is missing
    python -m experiments.ablations --dry-run        # what is done and what is left, with time estimates
    python -m experiments.ablations --seeds 1 --train-flags "--limit 64 --epochs 1 --max-length 32"
"""
import argparse
import json
import math
import shlex
from dataclasses import dataclass
from pathlib import Path

from experiments.transfer_set import INSULTS_UNLABELLED
from experiments.runner import (PlannedRun, add_jobs_argument, execute_session, is_done, planned_args, print_plan,
                                threads_per_run)
from experiments.study import FIRST_SEED, run_folder, study_run, study_seeds
from evaluate import ABLATIONS_DIR
from report.runs import train_py_time_s
from train import RECIPES

ENSEMBLE_SEEDS = study_seeds(3)  # the study's three teachers: 42, 1, 2
BUDGET_MINUTES = 90  # make ablations fits a CI-sized machine: 2 CPU cores, 90 minutes
PREFIX = "query: "  # what e5 models were trained with in front of every query


@dataclass(frozen=True)
class Point:
    """One point of an ablation: a ``train.py`` method with a few flags changed.

    ``name`` is the point's method in the report: a method of ``train.RECIPES`` for a point whose
    runs ``make all`` / ``make study`` already train (reused as they are), else its folder name
    under ``runs/ablations/``. ``teacher`` names the point whose run of the same seed is its
    ``--teacher`` (the study's teacher by default); ``ensemble`` takes the soft labels from the
    averaged logits of the study's teachers of ``ENSEMBLE_SEEDS``; ``soft_labels`` names the method whose run of
    the same seed gives the soft labels instead. The report compares the point with the point named
    ``against``, by default its family's first point.
    """
    family: str
    name: str
    label: str
    method: str
    flags: tuple[str, ...] = ()
    seeds: int = 1
    teacher: str | None = None  # None: the method's own (train.RECIPES)
    ensemble: bool = False
    soft_labels: str | None = None
    against: str | None = None

    @property
    def reused(self) -> bool:
        return self.name in RECIPES


FAMILIES = {
    "layers": "Layer choice: which teacher layers the distilled student keeps (default recipe)",
    "lora": "LoRA capacity: rank, targets and scaling (lora's recipe)",
    "transfer": "Transfer set: the odd student with unlabelled comments",
    "teacher": "Teacher signal: better soft labels for the odd student",
    "strong": "A stronger teacher: all-mpnet-base-v2's soft labels, each student against itself without them",
}
ON_REQUEST = ("strong",)  # families planned only when --seeds names them or their points
# Each family's first point is the method of make all that the others are compared with.
# The other layer sets of the 12-layer teacher. Sajjad et al. 2020 ("On the Effect of Dropping Layers of
# Pre-trained Transformer Models", arXiv:2004.03844) drop whole blocks of a pretrained model before fine-tuning:
# dropping the top layers ("bottom" keeps 1-6) cost them the least, "top" is its opposite, and "symmetric"
# drops the middle, testing both reasons for odd against even at once: the layers right after the embeddings
# and those right before the head. "distilbert" is what DistilBERT's extraction script copies: one of two,
# keeping both the bottom layer, which reads the embeddings, and the top one, which feeds the head.
LAYER_SETS = {"bottom": "1,2,3,4,5,6", "top": "7,8,9,10,11,12", "distilbert": "1,3,5,8,10,12",
              "symmetric": "1,2,3,10,11,12"}
# Every linear layer of a BERT encoder layer, attention's four projections then the feed-forward pair: adapting
# them all closes the gap to full fine-tuning (QLoRA, Dettmers et al. 2023).
ALL_LINEAR = "query,key,value,attention.output.dense,intermediate.dense,output.dense"
# The students of teacher-strong learn with the distillation settings make tune chose for minilm-kd.
STRONG_KD = ("--temperature", f"{RECIPES['minilm-kd'].temperature:g}", "--alpha-kd", f"{RECIPES['minilm-kd'].alpha_kd:g}")
POINTS = (
    Point("layers", "odd", "odd {1,3,5,7,9,11}", "odd", seeds=1),
    Point("layers", "even", "even {2,4,6,8,10,12}", "even", seeds=1),
    Point("layers", "layers-bottom", "bottom {1,2,3,4,5,6}", "odd", ("--layers", LAYER_SETS["bottom"])),
    Point("layers", "layers-top", "top {7,8,9,10,11,12}", "odd", ("--layers", LAYER_SETS["top"])),
    Point("layers", "layers-distilbert", "DistilBERT's {1,3,5,8,10,12}", "odd",
          ("--layers", LAYER_SETS["distilbert"])),
    Point("layers", "layers-symmetric", "symmetric {1,2,3,10,11,12}", "odd", ("--layers", LAYER_SETS["symmetric"])),
    Point("lora", "lora", "r=8, query+value, α/r", "lora", seeds=1),
    Point("lora", "lora-r2", "r=2, query+value, α/r", "lora", ("--lora-r", "2")),
    Point("lora", "lora-r32", "r=32, query+value, α/r", "lora", ("--lora-r", "32")),
    Point("lora", "lora-all-linear", "r=8, all linear layers, α/r", "lora", ("--lora-targets", ALL_LINEAR)),
    Point("lora", "lora-r32-rslora", "r=32, query+value, rsLoRA α/√r", "lora", ("--lora-r", "32", "--lora-rslora")),
    Point("transfer", "odd", "odd, labelled training split only", "odd", seeds=3),
    Point("transfer", "transfer-odd", "odd + the unlabelled comments of the archive (insults-unlabelled)", "odd",
          ("--transfer-set", INSULTS_UNLABELLED), seeds=3),
    Point("teacher", "odd", "odd, soft labels of its own seed's teacher", "odd", seeds=3),
    Point("teacher", "ensemble-odd", "odd, soft labels of the 3 teachers' averaged logits", "odd", seeds=3,
          ensemble=True),
    Point("teacher", "prefix-odd", f"odd from the teacher below, both with the prefix {PREFIX!r}", "odd",
          ("--text-prefix", PREFIX), teacher="prefix-teacher"),
    Point("teacher", "ensemble-transfer-odd", "odd, ensemble soft labels + transfer set", "odd",
          ("--transfer-set", INSULTS_UNLABELLED), seeds=0, ensemble=True),
    Point("teacher", "teacher", "teacher, one seed's run", "teacher", seeds=3, against="teacher"),
    Point("teacher", "prefix-teacher", f"teacher trained with the prefix {PREFIX!r}", "teacher",
          ("--text-prefix", PREFIX), against="teacher"),
    Point("strong", "odd-ce", "odd's start, the labels only (odd-ce)", "odd-ce", seeds=5),
    Point("strong", "strong-odd", "odd's start, soft labels of teacher-strong", "odd", STRONG_KD, seeds=5,
          soft_labels="teacher-strong"),
    Point("strong", "strong-odd-transfer", "strong-odd + the unlabelled comments (insults-unlabelled)", "odd",
          (*STRONG_KD, "--transfer-set", INSULTS_UNLABELLED), seeds=3, soft_labels="teacher-strong",
          against="strong-odd"),
    Point("strong", "minilm", "minilm fine-tuned on the labels", "minilm", seeds=5, against="minilm"),
    Point("strong", "minilm-kd", "minilm distilled from teacher-strong (minilm-kd)", "minilm-kd", seeds=5,
          against="minilm"),
    Point("strong", "minilm-kd-transfer", "minilm-kd + the unlabelled comments (insults-unlabelled)", "minilm-kd",
          ("--transfer-set", INSULTS_UNLABELLED), seeds=3, against="minilm-kd"),
    Point("strong", "lora", "lora, the labels only", "lora", seeds=3, against="lora"),
    Point("strong", "strong-lora", "lora with lora-kd's loss, soft labels of teacher-strong", "lora-kd", STRONG_KD,
          seeds=3, soft_labels="teacher-strong", against="lora"),
    Point("strong", "teacher-strong", "teacher-strong: all-mpnet-base-v2 fine-tuned", "teacher-strong", seeds=5,
          against="teacher"),
)
POINTS_BY_NAME = {point.name: point for point in POINTS if not point.reused}


def ablation_folder(runs_dir: str, name: str, seed: int) -> str:
    return f"{runs_dir}/{ABLATIONS_DIR}/{name}" + ("" if seed == FIRST_SEED else f"-seed{seed}")


def point_runs(point: Point, seed: int, runs_dir: str, extra: tuple[str, ...]) -> list[PlannedRun]:
    """The point's run at ``seed``, after every run it reads (its teacher, the ensemble's teachers)."""
    before, flags = [], ["--method", point.method, "--seed", str(seed)]
    if RECIPES[point.method].needs_teacher:
        teacher = (point_runs(POINTS_BY_NAME[point.teacher], seed, runs_dir, extra)[-1] if point.teacher
                   else study_run(runs_dir, RECIPES[point.method].teacher, seed, extra))
        before.append(teacher)
        flags += ["--teacher", teacher.out]
    if point.reused:
        return [*before, study_run(runs_dir, point.name, seed, extra)]
    if point.soft_labels:
        soft_labels = study_run(runs_dir, point.soft_labels, seed, extra)
        before.append(soft_labels)
        flags += ["--soft-labels-from", soft_labels.out]
    if point.ensemble:
        before += [study_run(runs_dir, "teacher", s, extra) for s in ENSEMBLE_SEEDS]
        flags += ["--soft-labels-from", ",".join(run_folder(runs_dir, "teacher", s) for s in ENSEMBLE_SEEDS)]
    return [*before, PlannedRun(ablation_folder(runs_dir, point.name, seed), (*flags, *point.flags, *extra))]


def ablation_plan(runs_dir: str = "runs", extra_flags: tuple[str, ...] = (),
                  seeds: dict[str, int] | None = None) -> list[PlannedRun]:
    """Every run of the ablations, each after the runs it reads, each once.

    ``seeds`` overrides a point's number of seeds, by point name, family or "all" (0 leaves it out); the points
    of an ``ON_REQUEST`` family are planned only when ``seeds`` names them or their family.
    """
    seeds = seeds or {}
    plan: dict[str, PlannedRun] = {}
    for point in POINTS:
        if point.family in ON_REQUEST and point.name not in seeds and point.family not in seeds:
            continue
        count = seeds.get(point.name, seeds.get(point.family, seeds.get("all", point.seeds)))
        for seed in study_seeds(count) if count else []:
            for run in point_runs(point, seed, runs_dir, extra_flags):
                if plan.setdefault(run.out, run) != run:
                    raise ValueError(f"two ablation runs would share {run.out}: {plan[run.out].flags} and {run.flags}")
    return list(plan.values())


def parse_seeds(text: str) -> dict[str, int]:
    """``"3"`` -> every point 3 seeds; ``"transfer=1,layers-top=3"`` -> per family or point name."""
    known = {"all", *FAMILIES, *(point.name for point in POINTS)}
    try:
        if "=" not in text:
            return {"all": int(text)}
        pairs = dict(item.split("=") for item in text.split(","))
        chosen = {key.strip(): int(value) for key, value in pairs.items()}
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: write a number, or name=number pairs like 'transfer=1,lora=3'")
    unknown = sorted(set(chosen) - known)
    if unknown or any(count < 0 for count in chosen.values()):
        raise argparse.ArgumentTypeError(f"{text!r}: unknown names {unknown} (families: {', '.join(FAMILIES)}) or a "
                                         f"negative count")
    return chosen


def cost_key(args: dict) -> tuple[str, int, bool]:
    """What a run's time depends on most: its method, its epochs, and whether it adds a transfer set."""
    return args["method"], args["epochs"], bool(args.get("transfer_set"))


def recorded_minutes(runs_dir: str) -> dict[tuple[str, int, bool], list[tuple[int | None, float]]]:
    """Every finished run's torch threads and ``train.py`` wall time under ``runs_dir`` (a resumed run's included,
    ``report.runs.train_py_time_s``), by ``cost_key``."""
    minutes: dict[tuple[str, int, bool], list[tuple[int | None, float]]] = {}
    for history_file in Path(runs_dir).glob("**/history.json"):
        try:
            history = json.loads(history_file.read_text())
            minutes.setdefault(cost_key(history["args"]), []).append(
                (history["args"].get("threads"), train_py_time_s(history) / 60))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return minutes


# Before any transfer-set run is recorded, one is estimated from its method's runs: the transfer set
# adds about 2.1k comments to the 3.6k of the training split (+60% steps) and the teacher's logits
# on them. Each train.py process takes about 20 seconds to start beyond its history's time.
TRANSFER_COST = 1.65
START_UP_MINUTES = 0.35


def estimate_minutes(run: PlannedRun, recorded: dict, threads: int | None = None) -> float:
    """A planned run's wall time from the recorded runs like it (``cost_key``), nan when there is none.

    Only those trained on ``threads`` torch threads count, when there are any: a run on one thread
    beside another takes longer than the same run alone on two (bench/parallel_runs.py).
    """
    key = cost_key(planned_args(run))
    like, scale = recorded.get(key), 1.0
    if not like and key[2]:
        like, scale = recorded.get((*key[:2], False)), TRANSFER_COST
    if not like:
        return float("nan")
    times = [minutes for used, minutes in like if used == threads] or [minutes for _, minutes in like]
    return sum(times) / len(times) * scale + START_UP_MINUTES


def run_minutes(run: PlannedRun, recorded: dict, threads: int | None = None) -> float:
    """What a run of the plan costs ``make ablations`` in all: its own time if it has trained it already,
    nothing for a finished run of make all or make study, else the estimate."""
    if not is_done(run):
        return estimate_minutes(run, recorded, threads)
    if Path(run.out).parent.name != ABLATIONS_DIR:
        return 0.0
    return (train_py_time_s(json.loads((Path(run.out) / "history.json").read_text())) or 0.0) / 60 + START_UP_MINUTES


def fitted_seeds(runs_dir: str, extra_flags: tuple[str, ...] = (), budget: float = BUDGET_MINUTES,
                 jobs: int = 1) -> dict | None:
    """The seeds of each point of its own that fit ``budget``: 1 each, then, in ``POINTS`` order, the number a
    point asks for, kept if the whole plan's time stays within the budget. With ``jobs`` runs at once
    the plan takes about the sum of its runs' times over ``jobs``. None while a run cannot be
    estimated (no recorded run of its method and epochs yet). The whole plan, the runs done included,
    is counted, so a later session makes the same choice."""
    recorded, threads = recorded_minutes(runs_dir), threads_per_run(jobs)

    def minutes(seeds: dict[str, int]) -> float:
        plan = ablation_plan(runs_dir, extra_flags, seeds)
        return sum(run_minutes(run, recorded, threads) for run in plan) / jobs

    seeds = {point.name: min(point.seeds, 1) for point in POINTS if not point.reused and point.family not in ON_REQUEST}
    if math.isnan(minutes(seeds)):
        return None
    for point in POINTS:
        if point.name in seeds and point.seeds > 1 and minutes({**seeds, point.name: point.seeds}) <= budget:
            seeds[point.name] = point.seeds
    return seeds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--seeds", type=parse_seeds, default={},
                        help="seeds per point: a number for all, or name=number pairs by family or point "
                             f"(default: fitted to {BUDGET_MINUTES} minutes from the recorded runs, see fitted_seeds)")
    parser.add_argument("--train-flags", default="", help="extra train.py flags for every run (smoke runs)")
    parser.add_argument("--dry-run", action="store_true", help="list the runs, done or to do, with estimates, and stop")
    add_jobs_argument(parser)
    args = parser.parse_args(argv)
    extra = tuple(shlex.split(args.train_flags))
    seeds = args.seeds
    if not seeds:
        seeds = fitted_seeds(args.runs_dir, extra, jobs=args.jobs)
        print(f"seeds fitted to the {BUDGET_MINUTES}-minute budget: {seeds}" if seeds is not None else
              "seeds: each point's own (no recorded run to estimate some of them from yet; run make all and "
              "make study first)")
    plan = ablation_plan(args.runs_dir, extra, seeds)
    if args.dry_run:
        recorded, threads = recorded_minutes(args.runs_dir), threads_per_run(args.jobs)
        print_plan(plan, lambda run: estimate_minutes(run, recorded, threads))
        left = [estimate_minutes(run, recorded, threads) for run in plan if not is_done(run)]
        known = [minutes for minutes in left if not math.isnan(minutes)]
        wall = sum(known) / args.jobs
        at_once = f" ({args.jobs} at once, each on {threads} thread(s))" if args.jobs > 1 else ""
        unknown = f"; {len(left) - len(known)} with no recorded run to estimate from" if len(known) < len(left) else ""
        print(f"{len(left)} runs to do: about {wall:.0f} minutes{at_once} for {len(known)} of them, estimated from "
              f"the recorded runs of the same method and epochs{unknown}")
        if wall > BUDGET_MINUTES:
            print(f"warning: more than the {BUDGET_MINUTES}-minute budget; give fewer seeds to a family or point, "
                  f"e.g. --seeds ensemble-odd=1 (make ablations ABLATION_FLAGS=...)")
        return
    session = execute_session(plan, args.runs_dir, ABLATIONS_DIR, {"seeds": seeds or "each point's own"},
                              jobs=args.jobs)
    print(f"ablations: {session['trained']} runs trained, {session['skipped']} already done, in "
          f"{session['wall_time_s'] / 60:.1f} min; now run `python -m report`")


if __name__ == "__main__":
    main()
