"""An off-the-shelf filter as a comparison row: alt-profanity-check scored on the insults test split.

    make peer                                  # builds .venv-peer if needed, then runs this
    python -m baselines.alt_profanity_check [--python .venv-peer/bin/python] [--out results/peer.json]

``alt-profanity-check==1.9.1`` (MIT) is what a practitioner might pip install instead of training anything:
TF-IDF word features and a linear SVM, calibrated to probabilities, trained on the Jigsaw 2018 + Davidson 2017
comments. We score its ``predict_prob`` by ROC-AUC, and by F1, precision and recall at its own decision rule:
its ``predict`` takes the more probable class, so toxic above 0.5, which threshold 0.5 reproduces (no test
comment scores exactly 0.5). It is not scored on toxic-comments: that dataset is the collection it learnt from.

The package loads its model with joblib, which unpickles it. Unpickling runs code, so it happens only in a
process of the side environment ``.venv-peer``, from the pinned PyPI package (the trust we give any installed
package), never in this project's environment: here we only send texts and read probabilities, both as JSON.
"""
import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

from data import DataError
from data.load import load_splits
from training.files import write_json_atomically
from training.metrics import binary_metrics

PACKAGE = "alt-profanity-check==1.9.1"
THRESHOLD = 0.5
NOT_ON_TOXIC_COMMENTS = ("Not scored on toxic-comments: this filter was trained on all of that collection "
                         "(Jigsaw 2018 + Davidson 2017), so its score there would be a training score.")
# Runs in the side environment, isolated (-I) from this folder: JSON texts in, JSON probabilities out.
SIDE_PROGRAM = ("import json, sys\n"
                "from profanity_check import predict_prob\n"
                "json.dump(predict_prob(json.load(sys.stdin.buffer)).tolist(), sys.stdout)\n")


class PeerError(RuntimeError):
    """The side environment is missing, failed, or did not answer one probability per text."""


def side_probabilities(python: Path, texts: list[str]) -> list[float]:
    """P(toxic) per text, from the package run by the side environment's ``python``; checked before it is used."""
    try:
        done = subprocess.run([str(python), "-I", "-c", SIDE_PROGRAM], input=json.dumps(texts).encode(),
                              capture_output=True)
    except OSError as error:
        raise PeerError(f"could not run {python}: {error}") from error
    if done.returncode != 0:
        last_line = (done.stderr.decode(errors="replace").strip().splitlines() or ["(nothing on stderr)"])[-1]
        raise PeerError(f"{python} exited with status {done.returncode}: {last_line}")
    try:
        probs = json.loads(done.stdout)
    except ValueError:
        raise PeerError(f"{python} answered no JSON: {done.stdout[:80]!r}") from None
    if not isinstance(probs, list) or len(probs) != len(texts):
        got = f"{len(probs)} values" if isinstance(probs, list) else f"a JSON {type(probs).__name__}"
        raise PeerError(f"{python} answered {got}, not a list of {len(texts)} probabilities, one per text")
    for index, prob in enumerate(probs):
        if isinstance(prob, bool) or not isinstance(prob, (int, float)) or not 0 <= prob <= 1:  # NaN fails too
            raise PeerError(f"{python} answered {prob!r} for text {index}, not a probability in [0, 1]")
    return [float(prob) for prob in probs]


def main(argv: list[str] | None = None) -> None:
    """Score the package on the insults test split and write ``--out``; any failure is one line on stderr."""
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m baselines.alt_profanity_check",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--python", type=Path, default=Path(".venv-peer/bin/python"),
                        help="the python of the side environment, where requirements-peer.txt is installed")
    parser.add_argument("--out", type=Path, default=Path("results/peer.json"))
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        if not args.python.is_file():
            raise PeerError(f"no side environment at {args.python}: run `make peer`, which builds .venv-peer "
                            f"from requirements-peer.txt")
        test = load_splits("insults").test
        probs = side_probabilities(args.python, test.texts)
    except (PeerError, DataError) as error:
        sys.exit(f"error: {error}")
    metrics = binary_metrics(test.labels, probs, THRESHOLD)
    ranking = {name: metrics.pop(name) for name in ("roc_auc", "pr_auc")}  # threshold-free: kept apart
    wall = round(time.perf_counter() - started, 1)
    write_json_atomically(args.out, {
        "package": PACKAGE, "dataset": "insults", "split": "test", "examples": len(test), **ranking,
        f"at_{THRESHOLD}": metrics, "wall_time_s": wall,
        "generated_by": shlex.join(["python", "-m", "baselines.alt_profanity_check", *argv]),
        "not_on_toxic_comments": NOT_ON_TOXIC_COMMENTS})
    print(f"{PACKAGE} on the insults test split ({len(test):,} comments): ROC-AUC {ranking['roc_auc']:.4f}; "
          f"at {THRESHOLD}: F1 {metrics['f1']:.4f}, precision {metrics['precision']:.4f}, "
          f"recall {metrics['recall']:.4f}; wrote {args.out} in {wall:.0f} s")


if __name__ == "__main__":
    main()
