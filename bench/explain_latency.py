"""What an explanation adds to a request: predict against predict + explain, side by side.

    python -m bench.explain_latency [--model runs/odd] [--words 20] [--comments 50] [--rounds 4] [--threads 1 2]
                                    [--precision auto]

The web app explains a comment by leave-one-word-out occlusion (serving/explain.py): one batched
forward pass of n + 1 comments for n words. This script loads the run as the web app does
(``serving.precision.load_predictor``), takes real test comments of the insults data cut to their
first ``--words`` words, and times, on each comment in turn, ``predict([text])`` (the request
without an explanation) and ``predict([text])`` then ``word_contributions(predictor, text)`` (the
request with one), one right after the other, so that anything else running on the machine slows
both alike. The added cost
is the difference of the two on the same comment; its median is the figure the target is about:
at most 150 ms at p50 for a 20-word comment on the odd-layer student, on 2 cores.

Each torch thread count is measured in turn: 1 is the web app's default (one intra-op thread per
request, see serving/server.py set_serving_threads), 2 uses both cores of this machine for one
request; the run is loaded again for each, after the thread count is set, because an ONNX Runtime
session takes its thread count when it is made. The precision is the web app's (``auto``: ONNX
Runtime where the run has a fresh export, else bf16 where the CPU multiplies it natively, see
serving/precision.py); explanations run at the precision of the predictions they explain.
"""
import argparse
import contextlib
import sys
import time
from pathlib import Path

import numpy as np
import torch

from data.load import load_splits
from models.load import ModelError
from serving.explain import word_contributions, word_spans
from serving.precision import PRECISIONS, load_predictor
from webapp.app import Predictor

TARGET_MS = 150.0
WARM_UP = 5


def comments_of(words: int, count: int) -> list[str]:
    """The first ``count`` test comments that have at least ``words`` words, cut to their first ``words``."""
    chosen = []
    with contextlib.redirect_stdout(sys.stderr):  # the split summary is progress, not a figure
        test = load_splits("insults").test
    for text in test.texts:
        spans = word_spans(text)
        if len(spans) >= words:
            chosen.append(" ".join(text[start:end] for start, end in spans[:words]))
        if len(chosen) == count:
            return chosen
    sys.exit(f"error: only {len(chosen)} test comments have {words} words or more; ask for fewer (--comments)")


def milliseconds(work) -> float:
    start = time.perf_counter()
    work()
    return 1000 * (time.perf_counter() - start)


def measure(predictor: Predictor, comments: list[str], rounds: int) -> dict[str, np.ndarray]:
    """Per timed request: predict alone, predict + explain, and the difference, paired on the same comment."""
    for text in comments[:WARM_UP]:
        predictor.predict([text])
        word_contributions(predictor, text)
    alone, explained = [], []
    for _ in range(rounds):
        for text in comments:
            alone.append(milliseconds(lambda: predictor.predict([text])))
            explained.append(milliseconds(lambda: (predictor.predict([text]), word_contributions(predictor, text))))
    alone, explained = np.array(alone), np.array(explained)
    return {"predict": alone, "predict + explain": explained, "explain adds": explained - alone}


def load(model: str, precision: str, threads: int) -> Predictor:
    """The run as the web app loads it, with ``threads`` torch threads (and as many ONNX Runtime threads)."""
    torch.set_num_threads(threads)
    try:
        return load_predictor(model, precision=precision)
    except ModelError as error:
        sys.exit(f"error: {error}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="runs/odd", help="run folder to serve (default: runs/odd)")
    parser.add_argument("--words", type=int, default=20, help="words per comment (default: 20)")
    parser.add_argument("--comments", type=int, default=50, help="test comments to time (default: 50)")
    parser.add_argument("--rounds", type=int, default=4, help="passes over the comments (default: 4)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch thread counts (default: 1 2)")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto", help="as the web app's (default: auto)")
    args = parser.parse_args(argv)
    predictor = load(args.model, args.precision, args.threads[0])
    comments = comments_of(args.words, args.comments)
    tokens = [len(predictor.tokenizer(text)["input_ids"]) for text in comments]
    print(f"model {predictor.name} ({Path(args.model)}), {predictor.model.config.num_hidden_layers} layers, "
          f"max length {predictor.max_length}, precision {predictor.precision}; {len(comments)} test comments cut "
          f"to {args.words} words: {np.mean(tokens):.1f} tokens on average ({min(tokens)}-{max(tokens)}), so one explanation is a batch of "
          f"{args.words + 1} comments; {args.rounds} rounds, {len(comments) * args.rounds} timed requests of each kind "
          f"per setting, alternating.\n")
    print("| torch threads | predict p50 / p95 (ms) | predict + explain p50 / p95 (ms) | explain adds p50 / p95 (ms) "
          f"| target: adds <= {TARGET_MS:.0f} ms at p50 |")
    print("|---|---|---|---|---|")
    for index, threads in enumerate(args.threads):
        if index:
            predictor = load(args.model, args.precision, threads)
        timings = measure(predictor, comments, args.rounds)
        cells = [f"{np.percentile(values, 50):.1f} / {np.percentile(values, 95):.1f}" for values in timings.values()]
        added = np.percentile(timings["explain adds"], 50)
        print(f"| {threads} | {' | '.join(cells)} | {'met' if added <= TARGET_MS else 'MISSED'} ({added:.0f} ms) |",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
