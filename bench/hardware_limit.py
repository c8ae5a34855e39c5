"""How close training comes to what this CPU can do: achieved FLOP/s against the measured matmul peak.

    python -m bench.hardware_limit                     # 6-layer student, fp32 and bf16
    python -m bench.hardware_limit --shape teacher --limit 128

Nearly all the arithmetic of a transformer is matrix multiplication, so the rate at which the
machine multiplies large matrices is the ceiling for training. This script measures both, at
the same moment, in fp32 and in bf16, and prints achieved / peak.

Peak: ``torch.matmul`` of two n x n matrices costs 2 n^3 FLOPs (n^3 multiply-adds, each a
multiply and an add). The best of ``--repeats`` timings is the peak: the least-disturbed run.

Achieved: FLOPs of the training steps divided by their time (``training/loop.py``'s step: full
fine-tuning, length-bucketed batches, the real insults lengths). The FLOPs are counted from the
model's matrix multiplications. For one token of a sequence of length s, in one BERT layer with
hidden size h and feed-forward size i, the forward pass does:

- 4 h^2 multiply-adds for the four h x h projections (query, key, value, attention output);
- 2 h i for the feed-forward network (h -> i and i -> h);
- 2 s h for attention: its scores against the s keys (q . k, h each) and the weighted sum of the
  s values (h each), summed over heads;

that is ``2 (4 h^2 + 2 h i) + 2 * 2 s h`` FLOPs per token per layer. Backward costs about twice
the forward: every product Y = X W needs dX = dY W^T and dW = X^T dY, each as large as the
forward product. So one training step is 3x the forward count, over batch x padded length
tokens (padding is computed like real tokens, so it counts: this is the work the hardware did,
not the useful work). Left out, because they are not matrix products or are negligible: the
embedding lookup and its gradient (a scatter-add), the pooler and classifier (once per sequence,
not per token), softmax, GELU, LayerNorm, dropout and the AdamW update. They take time all the
same, which is part of why training stays below the matmul peak; the rest is small matrices
(h = 384 is small by a CPU's standards) and the memory traffic between operations.
"""
import argparse
import contextlib
import sys
import time

import torch
from transformers import PretrainedConfig

from bench.common import (SHAPES, bucketed_batches, build_training_model, load_encoded_insults, markdown_table,
                          mean_length, run_script, set_threads, time_training_steps)
from models.load import load_tokenizer, resolve_model
from training.loop import cross_entropy_loss

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16}


def forward_flops(config: PretrainedConfig, batch_size: int, seq_len: int) -> int:
    """Matrix-multiplication FLOPs of a BERT encoder's forward pass on one padded batch (see the module docstring)."""
    h, i = config.hidden_size, config.intermediate_size
    per_token_per_layer = 2 * (4 * h * h + 2 * h * i) + 2 * 2 * seq_len * h
    return config.num_hidden_layers * batch_size * seq_len * per_token_per_layer


def training_flops(config: PretrainedConfig, batches: list[dict]) -> int:
    """Forward plus backward (2x forward) over all the batches: 3x the forward count."""
    return sum(3 * forward_flops(config, *batch["input_ids"].shape) for batch in batches)


def matmul_peak(size: int, dtype: torch.dtype, repeats: int) -> float:
    """FLOP/s of the fastest of ``repeats`` products of two size x size matrices in ``dtype``."""
    a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
    out = torch.matmul(a, b)  # warm-up: lets the library pick its kernel and touch the memory
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        torch.matmul(a, b, out=out)
        best = min(best, time.perf_counter() - started)
    return 2 * size ** 3 / best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=SHAPES, default="student", help="model whose training is measured")
    parser.add_argument("--base", default="e5-small", help="pretrained base (as train.py's --model)")
    parser.add_argument("--limit", type=int, default=256, help="training examples timed per precision")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--matrix-size", type=int, default=2048, help="n of the n x n matmul peak test")
    parser.add_argument("--repeats", type=int, default=10, help="timed matmuls per precision; the best counts")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    args = parser.parse_args(argv)
    set_threads(args.threads)

    base = resolve_model(args.base)
    tokenizer = load_tokenizer(base)
    with contextlib.redirect_stdout(sys.stderr):
        split = load_encoded_insults(tokenizer, train_limit=args.limit).train
    model = build_training_model(args.shape, base)
    batches = bucketed_batches(split, args.batch_size, tokenizer.pad_token_id)
    flops = training_flops(model.config, batches)
    real_tokens = sum(len(ids) for ids in split.token_ids)

    rows = []
    for name, dtype in PRECISIONS.items():
        print(f"measuring {name}: matmul peak, then training ...", file=sys.stderr, flush=True)
        peak = matmul_peak(args.matrix_size, dtype, args.repeats)
        measured = time_training_steps(model, batches, cross_entropy_loss, bf16=dtype == torch.bfloat16)
        achieved = flops / measured.seconds
        rows.append([name if name == "fp32" else "bf16 (autocast)", f"{peak / 1e9:.1f}", f"{achieved / 1e9:.1f}",
                     f"{achieved / peak:.1%}", f"{measured.examples_per_s:.1f}",
                     f"{measured.tokens / measured.seconds:,.0f}"])

    c = model.config
    print(f"{args.shape}: {c.num_hidden_layers} layers, hidden {c.hidden_size}, feed-forward {c.intermediate_size}; "
          f"{len(split.labels)} insults training examples in batches of {args.batch_size}: {real_tokens:,} real "
          f"tokens, {sum(b['input_ids'].numel() for b in batches):,} with padding (mean length "
          f"{mean_length(split):.1f}); {flops / 1e12:.2f} TFLOP of matrix products per pass (3x forward). "
          f"Peak: {args.matrix_size} x {args.matrix_size} matmul, best of {args.repeats}. Torch threads: "
          f"{torch.get_num_threads()}.\n")
    print(markdown_table(["precision", "matmul peak GFLOP/s", "training GFLOP/s", "achieved / peak", "examples/s",
                          "padded tokens/s"], rows))


if __name__ == "__main__":
    run_script(main)
