"""Distillation with cached teacher logits against running the teacher at every step.

    python -m bench.teacher_cache                        # runs/teacher -> odd student, 512 examples, 3 epochs
    python -m bench.teacher_cache --limit 128 --epochs 1

Distillation needs the teacher's logits for every training example in every epoch. The teacher
is frozen and in eval mode (dropout off), so those logits never change:
``distill.teacher_logits.cached_teacher_logits`` computes them once, in inference mode, and the
loss looks them up by example index. The alternative, the textbook loop, runs the teacher's
forward pass next to the student's at every step: one teacher pass per example per epoch
instead of one per example in all.

Both variants train the same odd-layer student (``distill.student.build_student`` on the
fine-tuned teacher in ``--teacher``), from the same weights, on the same length-bucketed batches
of ``--epochs`` epochs, with ``train.py``'s loss settings (``--method odd``) and bf16 autocast.
The cached variant is also charged for building its cache (hashing the teacher file, one
teacher pass over the examples, writing the file), so its total is what a fresh run pays; a
second student trained on the same data (even, lora-kd) finds the file and pays only its steps.
"""
import argparse
import contextlib
import copy
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import torch

from bench.common import (CPU, bucketed_batches, load_encoded_insults, markdown_table, mean_length, ratio, run_script,
                          set_threads, time_training_steps)
from distill.loss import distillation_loss
from distill.student import build_student, parse_layers
from distill.teacher_logits import cached_teacher_logits
from models.load import load_classifier, load_tokenizer
from train import distillation_step_loss
from train import parse_args as train_py_settings
from training.distributed import Distributed


def live_teacher_loss(model, batch: dict, *, teacher, args: argparse.Namespace) -> dict[str, torch.Tensor]:
    """The distillation loss of ``train.py``, with the teacher's logits computed here instead of looked up."""
    with torch.no_grad():
        teacher_logits = teacher(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    student_logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    return distillation_loss(student_logits.float(), teacher_logits.float(), batch["labels"],
                             temperature=args.temperature, alpha_ce=args.alpha_ce, alpha_kd=args.alpha_kd,
                             alpha_cos=args.alpha_cos)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", default="runs/teacher", help="fine-tuned teacher folder")
    parser.add_argument("--layers", default="odd", help="student layers, as train.py's --layers")
    parser.add_argument("--limit", type=int, default=512, help="training examples (the first N)")
    parser.add_argument("--epochs", type=int, help="default: train.py's")
    parser.add_argument("--batch-size", type=int, help="default: train.py's")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    settings = train_py_settings(["--method", "odd"])
    epochs = args.epochs or settings.epochs
    batch_size = args.batch_size or settings.batch_size
    if not Path(args.teacher).is_dir():
        raise SystemExit(f"error: no teacher folder {args.teacher}; train it first with "
                         f"`python train.py --method teacher`, or pass --teacher FOLDER")

    teacher = load_classifier(args.teacher).eval().requires_grad_(False)
    tokenizer = load_tokenizer(args.teacher)
    pad_id = tokenizer.pad_token_id
    student = build_student(teacher, parse_layers(args.layers, teacher.config.num_hidden_layers))
    with contextlib.redirect_stdout(sys.stderr):
        split = load_encoded_insults(tokenizer, train_limit=args.limit).train
    batches = bucketed_batches(split, batch_size, pad_id, epochs=epochs)
    measure = partial(time_training_steps, batches=batches, bf16=settings.bf16, lr=settings.lr)

    print("cached: building the cache ...", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-teacher-logits-") as scratch, \
            contextlib.redirect_stdout(sys.stderr):
        started = time.perf_counter()
        logits = cached_teacher_logits(teacher, Path(args.teacher), split, Path(scratch), pad_id,
                                       Distributed(rank=0, world_size=1, device=CPU))
        cache_s = time.perf_counter() - started
    print("cached: training ...", file=sys.stderr, flush=True)
    cached = measure(copy.deepcopy(student), loss_fn=partial(distillation_step_loss, teacher_logits=logits, args=settings))
    print("live teacher: training ...", file=sys.stderr, flush=True)
    live = measure(copy.deepcopy(student), loss_fn=partial(live_teacher_loss, teacher=teacher, args=settings))

    examples = len(split.labels)
    print(f"Teacher {args.teacher} ({teacher.config.num_hidden_layers} layers) -> {args.layers} student "
          f"({student.config.num_hidden_layers} layers); {examples} insults training examples (mean "
          f"{mean_length(split):.1f} tokens), epochs: {epochs}, batch {batch_size}, bf16 {settings.bf16}, "
          f"torch threads: {torch.get_num_threads()}.\n")
    print(markdown_table(
        ["variant", "teacher passes", "cache s", "steps s", "total s", "ex/s steps", "ex/s total"],
        [["cached teacher logits", f"{examples:,}", f"{cache_s:.1f}", f"{cached.seconds:.1f}",
          f"{cache_s + cached.seconds:.1f}", f"{cached.examples_per_s:.1f}",
          f"{cached.examples / (cache_s + cached.seconds):.1f}"],
         ["teacher at every step", f"{examples * epochs:,}", "", f"{live.seconds:.1f}", f"{live.seconds:.1f}",
          f"{live.examples_per_s:.1f}", f"{live.examples_per_s:.1f}"]]))
    print(f"\nSpeed of cached vs teacher at every step (above 1x: the cache is faster): "
          f"{ratio(live.seconds, cached.seconds)} on the steps, {ratio(live.seconds, cache_s + cached.seconds)} "
          f"including the cache build.")


if __name__ == "__main__":
    run_script(main)
