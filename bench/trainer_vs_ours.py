"""Our training loop against the standard tools, side by side: transformers.Trainer, and Trainer + peft for LoRA.

    python -m bench.trainer_vs_ours                      # both tasks, 512 examples, train.py's settings
    python -m bench.trainer_vs_ours --tasks lora --limit 64 --epochs 1     # a quick look

Two tasks, each trained once per contender on the same data slice (the first ``--limit``
training examples of the embedded insults data, tokenised once, with the same token ids), with
the same initial weights (same seed before the model is built), batch size, epochs, learning
rate, warm-up, weight decay, gradient clipping and bf16 autocast, all taken from ``train.py``:

- teacher: full fine-tuning of the 12-layer e5-small base (``python train.py --method teacher``).
  Ours is ``training.loop.train``; the standard tool is ``transformers.Trainer``.
- lora: LoRA on the 6-layer student built from the base's even layers
  (``python train.py --method lora``). Ours is ``lora.model.inject_lora`` + our loop; the
  standard tool is ``peft.get_peft_model`` (same r, alpha, dropout, target modules, and the
  same freshly initialised head modules trained in full via ``modules_to_save``) + Trainer.

What Trainer is given is what a practitioner would write: ``DataCollatorWithPadding`` (dynamic
padding to the longest example of each batch), ``bf16=True, use_cpu=True`` (the same bf16
autocast as ours), its default optimiser (fused AdamW), and per-epoch evaluation with
``load_best_model_at_end`` on validation ROC-AUC, which mirrors our loop's per-epoch validation,
resume checkpoint (``experiments.resume``'s, with which the runner trains every run) and best-epoch
restore. Trainer's default sampler draws random batches;
``train_sampling_strategy="group_by_length"`` is its opt-in equivalent of our length bucketing.
Both are run (``--trainer-sampling``), so the table separates what grouping by length buys from
what the rest of the loop does. (The optimisers differ too: ours is PyTorch's default
"foreach" AdamW; ``bench.speed_levers`` measures what the fused one would change.)

Timing excludes model loading and tokenisation, and a few untimed warm-up steps run before each
task, so the process's one-off start-up costs do not fall on whichever contender runs first.
Two figures per run:

- steps: the optimisation steps only (forward, backward, clip, optimiser, data collation);
  the between-epoch work (validation, checkpoint writing, restoring the best epoch) is cut out
  with timestamps: for Trainer from its ``on_epoch_end`` to its ``on_save`` callback, for ours
  from the call of ``validate`` to the return of the checkpoint's ``save`` (both wrapped, unchanged).
- whole: the complete ``train()`` call, what a user waits for.

Both contenders process the same number of examples (``--limit`` x ``--epochs``; no batch is
dropped). Validation ROC-AUC is then computed the same way for both returned models
(``training.loop.predict_logits`` in fp32 on the whole validation split). Targets: ours >= 1.3x
Trainer's examples/s on each task, at matched ROC-AUC.
"""
import argparse
import contextlib
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from unittest import mock

import numpy as np
import torch
from datasets import Dataset
from peft import LoraConfig, TaskType, get_peft_model
from transformers import (AutoConfig, DataCollatorWithPadding, Trainer, TrainerCallback,
                          TrainingArguments)

import training.loop
from bench.common import (CPU, bucketed_batches, EncodedData, load_encoded_insults, markdown_table, mean_length, ratio,
                          roc_auc, run_script, set_threads, time_training_steps)
from distill.student import build_student_from_base, parse_layers
from experiments.resume import EpochCheckpoints
from lora.lora import count_parameters, inject_lora, mark_only_lora_trainable
from models.load import load_classifier, load_tokenizer, resolve_model
from train import parse_args as train_py_settings
from training.distributed import Distributed
from training.loop import TrainingConfig, cross_entropy_loss, predict_logits
from training.metrics import binary_metrics

TASKS = ("teacher", "lora")
TRAINER_SAMPLERS = ("random", "group_by_length")
TARGET_RATIO = 1.3
WARM_UP_STEPS = 3


class StepClock:
    """Sums the time spent in optimisation steps, leaving out the work between epochs.

    ``pause()`` when an epoch's steps end and ``resume()`` when its between-epoch work is done.
    Only stretches that end in a pause count, so whatever follows the last checkpoint
    (restoring the best epoch) is left out as well. ``resume()`` also starts the clock.
    """

    def __init__(self):
        self.steps_s = 0.0
        self._since = time.perf_counter()

    def pause(self) -> None:
        self.steps_s += time.perf_counter() - self._since

    def resume(self) -> None:
        self._since = time.perf_counter()


class StepClockCallback(TrainerCallback):
    """Trainer calls on_epoch_end after an epoch's last step, then evaluates, saves and calls on_save."""

    def __init__(self, clock: StepClock):
        self.clock = clock

    def on_epoch_end(self, args, state, control, **kwargs):
        self.clock.pause()

    def on_save(self, args, state, control, **kwargs):
        self.clock.resume()


@dataclass
class Result:
    task: str
    contender: str
    sampler: str
    trainable: int
    examples: int
    whole_s: float
    steps_s: float
    roc_auc: float


def before(hook: Callable[[], None], function: Callable) -> Callable:
    """``function``, calling ``hook()`` first."""
    @wraps(function)
    def wrapper(*args, **kwargs):
        hook()
        return function(*args, **kwargs)
    return wrapper


def after(hook: Callable[[], None], function: Callable) -> Callable:
    """``function``, calling ``hook()`` once it has returned."""
    @wraps(function)
    def wrapper(*args, **kwargs):
        result = function(*args, **kwargs)
        hook()
        return result
    return wrapper


def build_model(task: str, base: str, settings: argparse.Namespace, *, ours: bool) -> torch.nn.Module:
    """The model as ``train.py`` builds it for ``task``; for LoRA, with our adapters or peft's.

    The seed is set first, so the new head (and the pooler) start from the same random weights
    for both contenders.
    """
    torch.manual_seed(settings.seed)
    if task == "teacher":
        return load_classifier(base)
    depth = AutoConfig.from_pretrained(base, trust_remote_code=False).num_hidden_layers
    model, new_head_modules = build_student_from_base(base, parse_layers(settings.init_layers, depth))
    targets = settings.lora_targets.split(",")
    if ours:
        inject_lora(model, targets=targets, r=settings.lora_r, alpha=settings.lora_alpha,
                    dropout=settings.lora_dropout)
        mark_only_lora_trainable(model, extra_trainable_modules=new_head_modules)
        return model
    # peft matches modules_to_save by name suffix, so our names ("bert.pooler", "classifier") fit as they are.
    config = LoraConfig(task_type=TaskType.SEQ_CLS, r=settings.lora_r, lora_alpha=settings.lora_alpha,
                        lora_dropout=settings.lora_dropout, target_modules=targets,
                        modules_to_save=list(new_head_modules))
    return get_peft_model(model, config)


def train_ours(model, data: EncodedData, settings: argparse.Namespace,
               pad_id: int) -> tuple[torch.nn.Module, float, float]:
    """``training.loop.train`` as ``train.py`` calls it; returns (trained model, whole seconds, steps seconds)."""
    config = TrainingConfig(epochs=settings.epochs, lr=settings.lr, batch_size=settings.batch_size,
                            warmup_ratio=settings.warmup_ratio, weight_decay=settings.weight_decay,
                            max_grad_norm=settings.max_grad_norm, seed=settings.seed, bf16=settings.bf16)
    env = Distributed(rank=0, world_size=1, device=CPU)
    with tempfile.TemporaryDirectory(prefix="bench-ours-") as scratch:
        clock = StepClock()
        checkpoints = EpochCheckpoints(Path(scratch) / "checkpoint")
        checkpoints.save = after(clock.resume, checkpoints.save)
        with mock.patch.object(training.loop, "validate", before(clock.pause, training.loop.validate)):
            started = time.perf_counter()
            clock.resume()
            training.loop.train(model, cross_entropy_loss, data.train, data.validation, config=config, env=env,
                                pad_id=pad_id, history={}, checkpoints=checkpoints)
            whole = time.perf_counter() - started
    return model, whole, clock.steps_s


def train_with_trainer(model, data: EncodedData, settings: argparse.Namespace, tokenizer,
                       sampler: str) -> tuple[torch.nn.Module, float, float]:
    """``transformers.Trainer`` with the same settings; returns (trained model, whole seconds, steps seconds)."""
    def as_dataset(split):
        return Dataset.from_dict({"input_ids": split.token_ids, "labels": split.labels})

    def compute_metrics(prediction):
        probs = torch.softmax(torch.from_numpy(np.asarray(prediction.predictions, dtype=np.float32)), -1)[:, 1]
        return {"roc_auc": binary_metrics(prediction.label_ids, probs.numpy())["roc_auc"]}

    with tempfile.TemporaryDirectory(prefix="bench-trainer-") as scratch:
        arguments = TrainingArguments(
            output_dir=scratch, use_cpu=True, bf16=settings.bf16, seed=settings.seed,
            num_train_epochs=settings.epochs, per_device_train_batch_size=settings.batch_size,
            per_device_eval_batch_size=TrainingConfig.eval_batch_size, learning_rate=settings.lr,
            lr_scheduler_type="linear", warmup_steps=settings.warmup_ratio, weight_decay=settings.weight_decay,
            max_grad_norm=settings.max_grad_norm, train_sampling_strategy=sampler,
            eval_strategy="epoch", save_strategy="epoch", save_total_limit=1, load_best_model_at_end=True,
            metric_for_best_model="roc_auc", greater_is_better=True, report_to="none")
        clock = StepClock()
        trainer = Trainer(model=model, args=arguments, train_dataset=as_dataset(data.train),
                          eval_dataset=as_dataset(data.validation), data_collator=DataCollatorWithPadding(tokenizer),
                          compute_metrics=compute_metrics, callbacks=[StepClockCallback(clock)])
        started = time.perf_counter()
        clock.resume()
        trainer.train()
        whole = time.perf_counter() - started
    return trainer.model, whole, clock.steps_s


def run(task: str, contender: str, sampler: str, base: str, data: EncodedData, settings, tokenizer) -> Result:
    ours = contender == "ours"
    model = build_model(task, base, settings, ours=ours)
    trainable, _ = count_parameters(model)
    print(f"\n== {task}: {contender} ({sampler}) ==", file=sys.stderr, flush=True)
    # Both loops print progress; keep stdout for the results.
    with contextlib.redirect_stdout(sys.stderr):
        if ours:
            model, whole, steps = train_ours(model, data, settings, tokenizer.pad_token_id)
        else:
            model, whole, steps = train_with_trainer(model, data, settings, tokenizer, sampler)
    # Both hand back the best epoch's weights (by validation ROC-AUC); score them the same way.
    logits = predict_logits(model, data.validation, tokenizer.pad_token_id, CPU)
    return Result(task, contender, sampler, trainable, len(data.train.labels) * settings.epochs, whole, steps,
                  roc_auc(data.validation, logits))


def warm_up(task: str, base: str, data: EncodedData, settings: argparse.Namespace, pad_id: int) -> None:
    """A few untimed training steps on a throwaway model before the contenders run.

    A process pays one-off costs on its first steps (thread pool start-up, memory pools, oneDNN
    picking kernels, lazy imports); without a warm-up they would all fall on whoever runs first.
    """
    print(f"\n== {task}: warm-up ==", file=sys.stderr, flush=True)
    batches = bucketed_batches(data.train, settings.batch_size, pad_id)[:WARM_UP_STEPS]
    time_training_steps(build_model(task, base, settings, ours=True), batches, cross_entropy_loss,
                        bf16=settings.bf16, warmup_steps=0)


def settings_for(task: str, args: argparse.Namespace) -> argparse.Namespace:
    """train.py's own defaults for the task's method, with this script's overrides."""
    settings = train_py_settings(["--method", task])
    for name in ("epochs", "batch_size", "seed"):
        if getattr(args, name) is not None:
            setattr(settings, name, getattr(args, name))
    settings.bf16 = args.bf16
    return settings


def print_report(results: list[Result], settings_by_task: dict, data: EncodedData) -> None:
    print(f"Data: first {len(data.train.labels)} insults training examples (mean {mean_length(data.train):.1f} "
          f"tokens), ROC-AUC on {len(data.validation.labels)} validation examples; torch threads: "
          f"{torch.get_num_threads()}.")
    for task, s in settings_by_task.items():
        print(f"{task}: epochs {s.epochs}, batch {s.batch_size}, lr {s.lr:g}, warm-up {s.warmup_ratio:g}, "
              f"weight decay {s.weight_decay:g}, clip {s.max_grad_norm:g}, seed {s.seed}, bf16 {s.bf16}"
              + (f", LoRA r {s.lora_r} alpha {s.lora_alpha:g} dropout {s.lora_dropout:g} on {s.lora_targets}"
                 if task == "lora" else ""))
    print()
    print(markdown_table(
        ["task", "loop", "batches", "trainable", "examples", "steps s", "ex/s steps", "whole s", "ex/s whole",
         "val ROC-AUC"],
        [[r.task, r.contender, r.sampler, f"{r.trainable:,}", r.examples, f"{r.steps_s:.1f}",
          f"{r.examples / r.steps_s:.1f}", f"{r.whole_s:.1f}", f"{r.examples / r.whole_s:.1f}", f"{r.roc_auc:.4f}"]
         for r in results]))
    print()
    rows = []
    for task in settings_by_task:
        ours = next(r for r in results if r.task == task and r.contender == "ours")
        for other in (r for r in results if r.task == task and r.contender != "ours"):
            speedup = other.steps_s / ours.steps_s
            rows.append([task, f"ours vs {other.contender} ({other.sampler})", f"{speedup:.2f}x",
                         ratio(other.whole_s, ours.whole_s), f"{ours.roc_auc - other.roc_auc:+.4f}",
                         "met" if speedup >= TARGET_RATIO else "not met"])
    print(markdown_table(["task", "comparison", "speed-up steps", "speed-up whole", "ROC-AUC ours - theirs",
                          f"target >= {TARGET_RATIO}x (steps)"], rows))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default=",".join(TASKS), help=f"comma-separated, from {', '.join(TASKS)}")
    parser.add_argument("--trainer-sampling", default=",".join(TRAINER_SAMPLERS),
                        help="Trainer's train_sampling_strategy values to run, comma-separated")
    parser.add_argument("--base", default="e5-small", help="pretrained base (as train.py's --model)")
    parser.add_argument("--limit", type=int, default=512, help="training examples (the first N)")
    parser.add_argument("--validation-limit", type=int, help="validation examples (default: all)")
    parser.add_argument("--epochs", type=int, help="default: train.py's")
    parser.add_argument("--batch-size", type=int, help="default: train.py's")
    parser.add_argument("--seed", type=int, help="default: train.py's")
    parser.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=True,
                        help="bf16 autocast for both contenders (default on, as in train.py)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    args = parser.parse_args(argv)
    tasks = [t for t in args.tasks.split(",") if t]
    samplers = [s for s in args.trainer_sampling.split(",") if s]
    for name, chosen, allowed in (("--tasks", tasks, TASKS), ("--trainer-sampling", samplers, TRAINER_SAMPLERS)):
        if not chosen or set(chosen) - set(allowed):
            parser.error(f"{name} takes a comma-separated choice from {', '.join(allowed)}")
    set_threads(args.threads)

    base = resolve_model(args.base)
    tokenizer = load_tokenizer(base)
    with contextlib.redirect_stdout(sys.stderr):
        data = load_encoded_insults(tokenizer, train_limit=args.limit, validation_limit=args.validation_limit)
    settings_by_task = {task: settings_for(task, args) for task in tasks}
    results = []
    for task in tasks:
        settings = settings_by_task[task]
        warm_up(task, base, data, settings, tokenizer.pad_token_id)
        results.append(run(task, "ours", "length-bucketed", base, data, settings, tokenizer))
        contender = "Trainer" if task == "teacher" else "Trainer+peft"
        for sampler in samplers:
            results.append(run(task, contender, sampler, base, data, settings, tokenizer))
    print_report(results, settings_by_task, data)


if __name__ == "__main__":
    run_script(main)
