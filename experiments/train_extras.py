"""train.py's run with the extras' flags, which train.py's core leaves out; experiments/runner.py trains every run so.

    python -m experiments.train_extras --method odd ...                  # checkpointed after every epoch
    python -m experiments.train_extras --method odd ... --resume         # goes on after its last epoch
    python -m experiments.train_extras --method odd --transfer-set insults-unlabelled

Every other flag is train.py's, and so is the run, with the same numbers:
- ``--resume`` and ``--keep-checkpoint``: a checkpoint after every epoch (experiments/resume.py). They change
  where a run starts, not what it learns, so history.json does not record them.
- ``--transfer-set`` and ``--transfer-text-column``: unlabelled comments a distilled student also learns from
  through the teacher (experiments/transfer_set.py), recorded with train.py's flags.
- ``--soft-labels-from``: the averaged logits of several teachers as the soft labels
  (experiments/ensemble_teacher.py), recorded with train.py's flags.
- ``--cos-on hidden``: the distillation's cosine term on aligned hidden states, as DistilBERT does
  (experiments/hidden_states.py), recorded with train.py's flags.
"""
import argparse
import shutil
import sys
from pathlib import Path

import train
from experiments.ensemble_teacher import EnsembleSoftLabels, add_ensemble_flags
from experiments.hidden_states import (add_hidden_state_flags, check_hidden_state_run, hidden_state_flag_problem,
                                       hidden_state_step_loss)
from experiments.resume import CheckpointError, EpochCheckpoints, check_same_settings, checkpoint_dir, is_main_process
from experiments.transfer_set import add_transfer_flags, transfer_comments, transfer_flag_problem
from training.loop import NonFiniteLossError


CHECKPOINT_FLAGS = ("resume", "keep_checkpoint")


def add_flags(parser: argparse.ArgumentParser) -> None:
    """The extras' flags, added to train.py's parser."""
    group = parser.add_argument_group("checkpoints (experiments/resume.py)")
    group.add_argument("--resume", action="store_true", help="continue from the last completed epoch")
    group.add_argument("--keep-checkpoint", action="store_true",
                       help="keep the checkpoint (runs/.checkpoints/<name>) after a successful save")
    add_transfer_flags(parser)
    add_ensemble_flags(parser)
    add_hidden_state_flags(parser)


def extra_flag_defaults() -> dict:
    """The extras' flags that a run records, at their defaults: what a run of train.py alone trained with."""
    parser = argparse.ArgumentParser(add_help=False)
    add_flags(parser)
    return {name: value for name, value in vars(parser.parse_args([])).items() if name not in CHECKPOINT_FLAGS}


def parse_args(argv: list[str] | None = None) -> tuple[dict, argparse.Namespace]:
    """(the checkpoint flags, train.py's flags with the extras' others): the run records the second."""
    args = train.parse_args(argv, add_flags=add_flags)
    teaching = [flag for flag, value in (("--transfer-set", args.transfer_set),
                                         ("--soft-labels-from", args.soft_labels_from)) if value]
    problem = transfer_flag_problem(args) or hidden_state_flag_problem(args)
    if teaching and train.RECIPES[args.method].loss != "kd":
        problem = (f"{teaching[0]} needs a method with a distillation loss (odd, even, lora-kd): it teaches through "
                   f"the teacher's soft labels, and {args.method} has none")
    if problem:
        print(f"error: {problem} (see python -m experiments.train_extras --help)", file=sys.stderr)
        sys.exit(2)
    return {flag: vars(args).pop(flag) for flag in CHECKPOINT_FLAGS}, args


def main(argv=None) -> None:
    flags, args = parse_args(argv)
    hidden = args.cos_on == "hidden" and train.RECIPES[args.method].loss == "kd"
    ensemble = EnsembleSoftLabels(args.soft_labels_from.split(",")) if args.soft_labels_from else None
    if ensemble:  # before any work, as train.py checks its flags
        ensemble.check(args.text_prefix)
    if hidden:
        check_hidden_state_run(args, train.RECIPES[args.method])
    checkpoints = EpochCheckpoints(checkpoint_dir(Path(args.out)), resume=flags["resume"])
    if flags["resume"]:  # before any work, as train.py checks its flags
        check_same_settings(checkpoints.directory, vars(args))
    try:
        train.main(args=args, checkpoints=checkpoints, transfer_set=transfer_comments, soft_labels=ensemble,
                   step_loss=hidden_state_step_loss if hidden else None)
    except NonFiniteLossError as error:
        error.args = (f"{error} {checkpoints.kept()}",)
        raise
    if not flags["keep_checkpoint"] and is_main_process():  # the run is safe in its folder
        shutil.rmtree(checkpoints.directory, ignore_errors=True)


if __name__ == "__main__":
    try:
        main()
    except (*train.RUN_ERRORS, CheckpointError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
