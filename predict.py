"""Score a file of comments with a trained run: every input row plus its toxic probability and label.

    python predict.py --model runs/odd comments.csv --out scored.csv
    python predict.py --model runs/odd comments.jsonl --text-column body --out scored.parquet
    cat comments.txt | python predict.py --model runs/odd > scored.jsonl   # one comment per line

Input: a CSV, JSON Lines (.jsonl, or .json holding JSON Lines) or Parquet file, or, with no file
(or ``-``), one comment per line on stdin. The text column is ``--text-column`` or, as in
``train.py``, the first of text / comment / tweet / Comment that the file has.

Output: the input rows, every column kept as it was read, plus ``toxic_probability``, ``label``
(``toxic`` / ``not_toxic`` at the run's validation threshold, or ``--threshold``) and ``error``
(empty, or why the row was not scored: an empty text). The format is the one ``--out``'s
extension names (.csv, .jsonl, .parquet); without ``--out`` the rows go to stdout as CSV for a
CSV input and as JSON Lines otherwise. The file is written atomically.

It calls ``Predictor.predict`` (webapp/app.py), the function behind the web app, at the precision
the server would use (serving/precision.py), so a comment gets the same probability here, in the web
app and in evaluate.py. Comments are sorted by length and scored in batches (``--batch-size``), each
padded only to its longest member, with a progress bar. An extras command (serving/README.md).
"""
import argparse
import io
import sys
import tempfile
from pathlib import Path

import pandas as pd

from baselines.tfidf import SETTINGS_FILE as TFIDF_SETTINGS_FILE
from data.load import FILE_FORMATS, TEXT_COLUMNS
from models.load import ModelError
from serving.precision import PRECISIONS, load_predictor
from serving.runs import resolve_model_folder
from training.files import write_atomically
from webapp.app import Predictor

OUTPUT_COLUMNS = ("toxic_probability", "label", "error")
STDIN_TEXT_COLUMN = "text"
EMPTY_TEXT = "empty text"


class ScoringError(ValueError):
    """Input that cannot be scored as asked; the message says what to change."""


def read_comments(source: str, text_column: str | None) -> tuple[pd.DataFrame, str, str]:
    """The rows to score, the name of their text column, and the input's format (csv, json, parquet, lines)."""
    if source == "-":
        try:  # the bytes, decoded strictly: a locale's lenient decoding would let broken bytes through
            lines = (sys.stdin.buffer.read().decode("utf-8") if hasattr(sys.stdin, "buffer") else sys.stdin.read())
        except UnicodeDecodeError as error:
            raise ScoringError(f"stdin is not UTF-8 text ({error.reason} at byte {error.start}); "
                               f"convert it, e.g. with iconv -t UTF-8") from None
        lines = lines.splitlines()
        if not lines:
            raise ScoringError("stdin is empty: send one comment per line")
        return pd.DataFrame({STDIN_TEXT_COLUMN: lines}), STDIN_TEXT_COLUMN, "lines"
    path = Path(source)
    file_format = FILE_FORMATS.get(path.suffix.lower())
    if file_format is None:
        raise ScoringError(f"cannot read {path}: the file name must end in one of {', '.join(sorted(FILE_FORMATS))}")
    if not path.is_file():
        raise ScoringError(f"no such file: {path}")
    try:
        if file_format == "csv":  # every cell as the string it is, so that rows come back unchanged
            rows = pd.read_csv(path, dtype=str, keep_default_na=False, skip_blank_lines=False)
        elif file_format == "json":
            rows = pd.read_json(path, lines=True, dtype=False)
        else:
            rows = pd.read_parquet(path)
    except pd.errors.EmptyDataError:
        raise ScoringError(f"{path} is empty") from None
    except (OSError, ValueError, ImportError) as error:
        raise ScoringError(f"could not read {path} as {file_format}: {str(error).splitlines()[0]}") from None
    if rows.empty:
        raise ScoringError(f"{path} has no rows to score")
    columns = [str(column) for column in rows.columns]
    if text_column is None:
        text_column = next((column for column in TEXT_COLUMNS if column in columns), None)
        if text_column is None:
            raise ScoringError(f"{path} has none of the text columns {', '.join(TEXT_COLUMNS)}; its columns are "
                               f"{', '.join(columns)}. Name yours with --text-column.")
    elif text_column not in columns:
        raise ScoringError(f"{path} has no column {text_column!r}; its columns are {', '.join(columns)}")
    return rows, text_column, file_format


def check_writable(out: Path) -> None:
    """Fail before any scoring when ``out`` cannot be written: a file is created and removed beside it."""
    if out.is_dir():
        raise ScoringError(f"--out {out} is a folder; name the file to write, e.g. {out / 'scored.csv'}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out.parent, prefix=f".{out.name}."):
            pass
    except OSError as error:
        raise ScoringError(f"--out {out} cannot be written ({error.strerror or error})") from None


def text_of(value) -> str | None:
    """A cell as the text to score, or None when it holds no text (missing, NaN, blank)."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    text = value if isinstance(value, str) else str(value)
    return text if text.strip() else None


def score(rows: pd.DataFrame, text_column: str, predictor: Predictor, batch_size: int) -> pd.DataFrame:
    """``rows`` plus the three output columns; rows without a text are error rows, not failures."""
    texts = [text_of(value) for value in rows[text_column]]
    scorable = [index for index, text in enumerate(texts) if text is not None]
    verdicts = predictor.predict([texts[index] for index in scorable], batch_size, progress=True)
    probabilities = [None] * len(texts)
    labels = [None] * len(texts)
    errors = [EMPTY_TEXT] * len(texts)
    for index, verdict in zip(scorable, verdicts):
        probabilities[index], labels[index], errors[index] = verdict["toxic_probability"], verdict["label"], ""
    scored = rows.copy()
    scored["toxic_probability"] = pd.array(probabilities, dtype="Float64")
    scored["label"] = labels
    scored["error"] = errors
    return scored


def output_format(out: Path | None, input_format: str) -> str:
    if out is None:
        return "csv" if input_format == "csv" else "json"
    file_format = FILE_FORMATS.get(out.suffix.lower())
    if file_format is None:
        raise ScoringError(f"cannot write {out}: the file name must end in one of {', '.join(sorted(FILE_FORMATS))}")
    return file_format


def write_rows(rows: pd.DataFrame, file_format: str, target) -> None:
    """Write ``rows`` as ``file_format`` to ``target``, a path or a text stream (not Parquet)."""
    if file_format == "csv":
        rows.to_csv(target, index=False)
    elif file_format == "json":
        rows.to_json(target, orient="records", lines=True, force_ascii=False)
    else:
        rows.to_parquet(target, index=False)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", nargs="?", default="-",
                        help="CSV, JSON Lines or Parquet file (default: one comment per line on stdin)")
    parser.add_argument("--model", help="run folder (default: the one the web app serves, the best student's best run in --results)")
    parser.add_argument("--results", default="results/results.json",
                        help="evaluate.py's results, used to pick the default model")
    parser.add_argument("--text-column", help=f"column holding the comments (default: the first of "
                                              f"{', '.join(TEXT_COLUMNS)})")
    parser.add_argument("--out", type=Path, help="output file, .csv / .jsonl / .parquet (default: stdout)")
    parser.add_argument("--threshold", type=float, help="decision threshold (default: the run's validation_threshold)")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="fp32, bf16, onnx or int8 (ONNX Runtime on the run's export: python -m "
                             "serving.export_onnx RUN), or auto: int8 or onnx where the run has a fresh export, else "
                             "bf16 where the hardware has it, else fp32 (serving/precision.py)")
    parser.add_argument("--batch-size", type=int, default=64, help="comments per forward pass")
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error("--batch-size must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.threshold is not None and not 0 <= args.threshold <= 1:
            raise ScoringError(f"--threshold must be between 0 and 1, got {args.threshold}")
        rows, text_column, input_format = read_comments(args.input, args.text_column)
        file_format = output_format(args.out, input_format)
        if args.out is None and file_format == "parquet":
            raise ScoringError("Parquet cannot go to stdout; pass --out FILE.parquet")
        if args.out is not None:
            check_writable(args.out)
        folder = resolve_model_folder(args.model, args.results)
        if (folder / TFIDF_SETTINGS_FILE).is_file():
            raise ScoringError(f"{folder} is a run of the TF-IDF baseline (tfidf), not a network: predict.py scores "
                               f"network runs; python -m report scores tfidf on the test split")
        predictor = load_predictor(folder, args.threshold, args.precision)
    except (ScoringError, ModelError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    scored = score(rows, text_column, predictor, args.batch_size)
    if args.out is None:
        buffer = io.StringIO()
        write_rows(scored, file_format, buffer)
        sys.stdout.write(buffer.getvalue())
    else:
        write_atomically(args.out, lambda temporary: write_rows(scored, file_format, temporary))
    toxic = int((scored["label"] == "toxic").sum())
    failed = int((scored["error"] != "").sum())
    print(f"scored {len(scored) - failed:,} of {len(scored):,} rows with {predictor.name} ({predictor.precision}, "
          f"threshold {predictor.threshold:.3f}): {toxic:,} toxic"
          + (f"; {failed:,} error rows ({EMPTY_TEXT})" if failed else "")
          + (f" -> {args.out}" if args.out else ""), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
