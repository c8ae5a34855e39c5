"""What each speed lever is worth on this CPU, every one measured side by side with its default.

    python -m bench.speed_levers                       # 6-layer student, 256 examples
    python -m bench.speed_levers --shape teacher       # the 12-layer teacher instead
    python -m bench.speed_levers --no-compile --limit 128 --inference-limit 256   # quicker

Training levers time ``--limit`` training examples of the insults data, one training step per
batch (forward, backward, clip, AdamW, as in ``training/loop.py``), on the real model shape:
the 6-layer student built from e5-small's even layers, fully fine-tuned as in distillation
(``--shape teacher``: the 12-layer teacher). The default set-up is ``train.py``'s: bf16
autocast, length-bucketed batches, eager PyTorch, torch's thread count. Each lever changes one
thing, and its default is measured again right beside it, so a slow spell of a shared machine
hits both sides alike:

- precision: bf16 autocast against fp32. bf16 halves the bytes the matrix multiplications move,
  and CPUs with AVX512-BF16 or AMX multiply bf16 at two or more times the fp32 rate.
- batching: length buckets against random batches padded to their longest member, and against
  padding every batch to 128 tokens. Padding positions are computed like real ones, so the
  padded-token count predicts the cost; attention even grows with its square.
- optimizer: our AdamW with ``fused=True`` (one kernel over all parameters, as
  ``training.loop.build_optimizer`` builds it) against PyTorch's default multi-tensor "foreach"
  update. The update touches every trainable parameter four times per step, so it costs in
  proportion to the parameter count, not the batch: it matters for full fine-tuning (embeddings included), not for LoRA.
- torch.compile (``dynamic=True``: lengths vary per batch) against eager. The first pass over
  the batches compiles and is reported apart; the timed pass reruns the same batches.
- threads: torch intra-op threads, e.g. 1 against 2.

Inference levers time ``training.loop.predict_logits`` (eval mode, no gradients, batches of 64
sorted by length) on the insults test split:

- LoRA unmerged (``LoRALinear``: W0 x + B A x, three matrix products) against merged
  (``lora.model.merge_lora``: one product with W0 + B A), on a freshly injected student;
  fp32, as the web app serves.
- a trained run (``--model``, default runs/even) in fp32, under bf16 autocast, and after int8
  dynamic quantisation of its ``nn.Linear`` layers (``torch.ao.quantization.quantize_dynamic``:
  weights stored in int8, activations quantised per batch on the fly), with each variant's test
  ROC-AUC, so a speed-up is weighed against what it costs in quality.
"""
import argparse
import contextlib
import copy
import sys
import time
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.common import (SHAPES, bucketed_batches, build_training_model, load_encoded_insults, markdown_table,
                          mean_length, ratio, roc_auc, run_script, set_threads, Throughput, time_inference,
                          time_training_steps)
from lora.lora import inject_lora, merge_lora
from models.load import load_classifier, load_tokenizer, resolve_model
from train import parse_args as train_py_settings
from training.batching import MAX_LENGTH, make_batch
from training.loop import EncodedSplit, TrainingConfig, build_optimizer, cross_entropy_loss

def random_batches(split: EncodedSplit, batch_size: int, pad_id: int, pad_to: int | None = None,
                   seed: int = 42) -> list[dict]:
    """Batches in random order, as a plain shuffling sampler gives them, padded to ``pad_to`` or the batch max."""
    order = np.random.default_rng(seed).permutation(len(split.labels))
    batches = [make_batch(order[i:i + batch_size].tolist(), split.token_ids, split.labels, pad_id)
               for i in range(0, len(order), batch_size)]
    if pad_to is not None:
        for batch in batches:
            extra = pad_to - batch["input_ids"].size(1)
            batch["input_ids"] = F.pad(batch["input_ids"], (0, extra), value=pad_id)
            batch["attention_mask"] = F.pad(batch["attention_mask"], (0, extra), value=0)
    return batches


def foreach_adamw(model: nn.Module, lr: float) -> torch.optim.Optimizer:
    """``training.loop.build_optimizer``'s AdamW (same parameter groups and weight decay), without the fused kernel."""
    loop_optimizer, _ = build_optimizer(model, TrainingConfig(lr=lr), total_steps=1)
    return torch.optim.AdamW([{"params": group["params"], "weight_decay": group["weight_decay"]}
                              for group in loop_optimizer.param_groups], lr=lr, foreach=True)


def threads_label(threads: int) -> str:
    return f"{threads} thread" + ("s" if threads > 1 else "")


def row(lever: str, variant: str, measured: Throughput | None, default: Throughput | None, note: str = "") -> list:
    """One table row; ``measured`` is None for a variant that could not run (the note says why)."""
    if measured is None:
        return [lever, variant, "", "", "", "", note]
    return [lever, variant, f"{measured.tokens:,}", f"{measured.seconds:.1f}", f"{measured.examples_per_s:.1f}",
            ratio(measured.examples_per_s, default.examples_per_s), note]


def training_levers(model: nn.Module, split: EncodedSplit, args: argparse.Namespace, pad_id: int) -> list[list]:
    """Every training lever against the default set-up, measured in adjacent pairs; returns table rows."""
    bucketed = bucketed_batches(split, args.batch_size, pad_id)
    measure = partial(time_training_steps, model, loss_fn=cross_entropy_loss, lr=args.lr)

    def default() -> Throughput:
        return measure(bucketed, bf16=True)

    def lever(name: str, variants: dict[str, Callable[[], Throughput]]) -> list[list]:
        print(f"measuring {name} ...", file=sys.stderr, flush=True)
        base = default()
        return [row(name, f"default: bf16, bucketed, fused AdamW, eager, {threads_label(torch.get_num_threads())}",
                    base, base)] + \
               [row(name, variant, measure_variant(), base) for variant, measure_variant in variants.items()]

    rows = lever("precision", {"fp32": lambda: measure(bucketed, bf16=False)})
    rows += lever("batching", {
        "random batches, padded to batch max":
            lambda: measure(random_batches(split, args.batch_size, pad_id), bf16=True),
        f"random batches, padded to {args.max_length}":
            lambda: measure(random_batches(split, args.batch_size, pad_id, args.max_length), bf16=True)})
    rows += lever("optimizer", {"foreach AdamW": lambda: measure(bucketed, bf16=True,
                                                                  optimizer=foreach_adamw(model, args.lr))})
    default_threads = torch.get_num_threads()
    for threads in args.thread_counts:
        if threads != default_threads:
            rows += lever("threads", {threads_label(threads): partial(with_threads, threads, default)})
    if args.compile:
        rows += compile_lever(model, bucketed, args.lr, default)
    return rows


def with_threads(threads: int, measure: Callable[[], Throughput]) -> Throughput:
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return measure()
    finally:
        torch.set_num_threads(previous)


def compile_lever(model: nn.Module, batches: list[dict], lr: float, default: Callable) -> list[list]:
    """torch.compile against eager. Compilation happens in a first, separately timed, pass over the batches."""
    print("measuring torch.compile (the first pass compiles; this can take minutes) ...", file=sys.stderr, flush=True)
    base = default()
    compiled = torch.compile(model, dynamic=True)
    measure = partial(time_training_steps, compiled, batches, cross_entropy_loss, bf16=True, lr=lr, warmup_steps=0)
    try:
        started = time.perf_counter()
        measure()
        first_pass = time.perf_counter() - started
        steady = measure()
    except Exception as error:  # compilation fails in many library-specific ways; report, don't crash
        message = str(error).strip().splitlines()[0][:120] if str(error).strip() else ""
        return [row("torch.compile", "default: eager", base, base),
                row("torch.compile", "compiled", None, None, f"failed: {type(error).__name__}: {message}")]
    return [row("torch.compile", "default: eager", base, base),
            row("torch.compile", "compiled (dynamic=True)", steady, base,
                f"first pass incl. compiling {first_pass:.0f} s")]


def lora_merge_lever(base: str, split: EncodedSplit, pad_id: int, args: argparse.Namespace) -> list[list]:
    """Inference of a LoRA student with the adapters beside the weights, and folded into them."""
    print("measuring LoRA merged vs unmerged inference ...", file=sys.stderr, flush=True)
    lora = train_py_settings(["--method", "lora"])
    unmerged = build_training_model("student", base)
    inject_lora(unmerged, targets=lora.lora_targets.split(","), r=lora.lora_r, alpha=lora.lora_alpha,
                dropout=lora.lora_dropout)
    merged = merge_lora(copy.deepcopy(unmerged))
    slow, _ = time_inference(unmerged, split, pad_id, batch_size=args.inference_batch_size)
    fast, _ = time_inference(merged, split, pad_id, batch_size=args.inference_batch_size)
    return [row("LoRA inference", "default: unmerged (LoRALinear)", slow, slow),
            row("LoRA inference", "merged (merge_lora)", fast, slow)]


def quantization_lever(run_folder: str, args: argparse.Namespace) -> tuple[list[list], list[list]]:
    """A trained run in fp32, bf16 autocast and int8 dynamic quantisation: speed and test ROC-AUC."""
    print(f"measuring int8 dynamic quantisation of {run_folder} ...", file=sys.stderr, flush=True)
    model = load_classifier(run_folder).eval()
    tokenizer = load_tokenizer(run_folder)
    with contextlib.redirect_stdout(sys.stderr):
        split = load_encoded_insults(tokenizer, test_limit=args.inference_limit, max_length=args.max_length).test
    pad_id = tokenizer.pad_token_id
    with warnings.catch_warnings():
        # torch announces that quantize_dynamic will move to torchao; it still works in this release.
        warnings.simplefilter("ignore", category=DeprecationWarning)
        warnings.simplefilter("ignore", category=UserWarning)
        quantized = torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), {nn.Linear}, dtype=torch.qint8)
        fp32, fp32_logits = time_inference(model, split, pad_id, batch_size=args.inference_batch_size)
        bf16, bf16_logits = time_inference(model, split, pad_id, bf16=True, batch_size=args.inference_batch_size)
        int8, int8_logits = time_inference(quantized, split, pad_id, batch_size=args.inference_batch_size)
    reference = roc_auc(split, fp32_logits)
    speed_rows, quality_rows = [], []
    for name, measured, logits in (("default: fp32", fp32, fp32_logits), ("bf16 autocast", bf16, bf16_logits),
                                   ("int8 dynamic quantisation", int8, int8_logits)):
        speed_rows.append(row(f"inference {run_folder}", name, measured, fp32))
        auc = roc_auc(split, logits)
        quality_rows.append([name, f"{auc:.4f}", f"{auc - reference:+.4f}",
                             f"{(logits.argmax(-1) == fp32_logits.argmax(-1)).float().mean().item():.2%}"])
    return speed_rows, quality_rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=SHAPES, default="student", help="model whose training is timed")
    parser.add_argument("--base", default="e5-small", help="pretrained base (as train.py's --model)")
    parser.add_argument("--model", default="runs/even", help="trained run folder for the quantisation lever")
    parser.add_argument("--limit", type=int, default=256, help="training examples timed per variant")
    parser.add_argument("--inference-limit", type=int, default=512, help="test examples timed per inference variant")
    parser.add_argument("--batch-size", type=int, default=32, help="training batch size (train.py's default)")
    parser.add_argument("--inference-batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--max-length", type=int, default=MAX_LENGTH)
    parser.add_argument("--threads", type=int, help="default torch threads (default: torch's choice)")
    parser.add_argument("--thread-counts", default="1,2", help="thread counts to compare with the default")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True,
                        help="include the torch.compile lever (its compilation can take minutes)")
    parser.add_argument("--levers", default="training,lora,quantization",
                        help="which groups to run: training, lora, quantization (comma-separated)")
    args = parser.parse_args(argv)
    args.thread_counts = [int(n) for n in args.thread_counts.split(",") if n]
    groups = set(args.levers.split(","))
    if not groups or groups - {"training", "lora", "quantization"}:
        parser.error("--levers takes a comma-separated choice from training, lora, quantization")
    if "quantization" in groups and not Path(args.model).is_dir():
        parser.error(f"no run folder {args.model} for the quantisation lever: train it first (python train.py "
                     f"--method even), pass another with --model, or leave the lever out with --levers training,lora")
    set_threads(args.threads)

    base = resolve_model(args.base)
    tokenizer = load_tokenizer(base)
    with contextlib.redirect_stdout(sys.stderr):
        data = load_encoded_insults(tokenizer, train_limit=args.limit, test_limit=args.inference_limit,
                                    max_length=args.max_length)
    pad_id = tokenizer.pad_token_id
    print(f"torch {torch.__version__}, torch threads by default: {torch.get_num_threads()}, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}. Training: {args.shape} shape, {len(data.train.labels)} "
          f"insults training examples (mean {mean_length(data.train):.1f} tokens), batch {args.batch_size}. "
          f"Inference: {len(data.test.labels)} test examples, batch {args.inference_batch_size}.")
    headers = ["lever", "variant", "padded tokens", "seconds", "examples/s", "vs default", "note"]
    rows = []
    if "training" in groups:
        rows += training_levers(build_training_model(args.shape, base), data.train, args, pad_id)
    if "lora" in groups:
        rows += lora_merge_lever(base, data.test, pad_id, args)
    quality = []
    if "quantization" in groups:
        speed_rows, quality = quantization_lever(args.model, args)
        rows += speed_rows
    print()
    print(markdown_table(headers, rows))
    if quality:
        print(f"\nQuality of {args.model} on the insults test split ({len(data.test.labels)} examples):\n")
        print(markdown_table(["variant", "test ROC-AUC", "change vs fp32", "same prediction as fp32"], quality))


if __name__ == "__main__":
    run_script(main)
