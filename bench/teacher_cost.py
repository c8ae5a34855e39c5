"""What the stronger teacher costs: a training step of all-mpnet-base-v2 against one of the e5-small teacher.

    python -m bench.teacher_cost                      # 256 training comments, 2 rounds each, torch's threads
    python -m bench.teacher_cost --limit 64 --rounds 1 --threads 2

Both teachers are fine-tuned by the same loop (``train.py --method teacher`` and ``--method teacher-strong``), so
the cost of one is the cost of its steps. Each starts from its embedded pretrained weights with a new head, reads
the same training comments through its own tokenizer, in the loop's length-bucketed batches, and trains one
step per batch as ``training/loop.py`` does (AdamW, clipping; fp32 unless --bf16). The two alternate, round after
round, so that a slower or busier moment of the machine falls on both; the table gives each one's median round
and the ratio. MPNet is twice as wide (hidden 768 against 384) with a four times larger feed-forward, so about
four times the multiply-adds per token.
"""
import argparse
import statistics

from bench.common import (bucketed_batches, load_encoded_insults, markdown_table, ratio, run_script, set_threads,
                          time_training_steps)
from models.load import load_classifier, load_tokenizer, resolve_model
from train import BATCH_SIZE, RECIPES
from training.loop import cross_entropy_loss

TEACHERS = ("teacher", "teacher-strong")  # train.py's methods, each with its own pretrained model


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=256, help="training comments timed per round (the first N)")
    parser.add_argument("--rounds", type=int, default=2, help="timed rounds per teacher, alternating")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (emulated, and slow, without AVX512-BF16)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    args = parser.parse_args(argv)
    threads = set_threads(args.threads)
    setups = {}
    for method in TEACHERS:
        folder = resolve_model(RECIPES[method].model)
        tokenizer = load_tokenizer(folder)
        data = load_encoded_insults(tokenizer, train_limit=args.limit, validation_limit=1, test_limit=1)
        setups[method] = (load_classifier(folder, num_labels=2),
                          bucketed_batches(data.train, args.batch_size, tokenizer.pad_token_id))
    seconds = {method: [] for method in TEACHERS}
    for round_ in range(args.rounds):
        for method, (model, batches) in setups.items():
            timed = time_training_steps(model, batches, cross_entropy_loss, bf16=args.bf16,
                                        lr=RECIPES[method].lr, warmup_steps=1 if round_ == 0 else 0)
            seconds[method].append(timed.seconds / len(batches))
            print(f"round {round_ + 1}: {method} {timed.seconds:.1f} s for {len(batches)} steps "
                  f"({timed.examples_per_s:.1f} examples/s)", flush=True)
    step = {method: statistics.median(times) for method, times in seconds.items()}
    params = {method: sum(p.numel() for p in setups[method][0].parameters()) for method in TEACHERS}
    print(f"\n{args.limit} insults training comments, batch {args.batch_size}, {'bf16' if args.bf16 else 'fp32'}, "
          f"{threads} torch thread(s); the median of {args.rounds} alternating round(s)\n")
    print(markdown_table(["Teacher", "Model", "Parameters", "Seconds per step", "Examples/s", "Per step vs teacher"],
                         [[method, RECIPES[method].model, f"{params[method] / 1e6:.1f} M", f"{step[method]:.2f}",
                           f"{args.batch_size / step[method]:.1f}", ratio(step[method], step["teacher"])]
                          for method in TEACHERS]))


if __name__ == "__main__":
    run_script(main)
