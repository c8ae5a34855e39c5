"""A transfer set: unlabelled comments that a distilled student learns from through its teacher alone.

    python -m experiments.train_extras --method odd --transfer-set insults-unlabelled

Distillation needs only the teacher's answer (Hinton et al. 2015, section 2), so any comment trains the student's
soft-label terms; LoRA and plain fine-tuning cannot use it. Nothing the model is measured on may be trained on, not
even through the teacher: a comment whose normalised text equals a validation or test comment is dropped. So are
copies of a training comment (they would count it twice, with its label and without), repeats, and wordless ones.
"""
from dataclasses import dataclass
from pathlib import Path

from data import DataError
from data.assets import AssetError
from data.load import FILE_FORMATS, TEXT_COLUMNS, check_text_feature, read_data_file
from data.splits import Splits, normalise_text
from embedded.insults import load_insults_unlabelled
from experiments.resume import is_main_process

INSULTS_UNLABELLED = "insults-unlabelled"  # final.csv of the embedded archive: 2,235 comments from the same source


@dataclass
class TransferSet:
    """The comments kept for training, where they came from, and what was dropped and why."""
    texts: list[str]
    source: str
    counts: dict[str, int]

    def summary(self) -> str:
        c = self.counts
        return (f"transfer set {self.source}: {c['read']:,} comments read; dropped {c['test_or_validation']:,} equal "
                f"to a test or validation comment, {c['train']:,} equal to a training comment, {c['repeats']:,} "
                f"repeats and {c['empty']:,} without a word (texts compared after normalisation); {c['used']:,} "
                f"used, unlabelled (teacher terms only)")


def read_transfer_texts(spec: str, text_column: str | None = None,
                        cache_dir: str | Path | None = None) -> tuple[list[str], str]:
    """The raw texts of ``insults-unlabelled`` or of a CSV / JSON Lines / Parquet file, and where they came from."""
    if spec == INSULTS_UNLABELLED:
        try:
            return load_insults_unlabelled(cache_dir), f"{INSULTS_UNLABELLED} (final.csv of the insults archive)"
        except AssetError as error:
            raise DataError(str(error)) from error
    path = Path(spec).expanduser()
    if not path.is_file():
        raise DataError(f"--transfer-set {spec!r}: no such file; pass '{INSULTS_UNLABELLED}' or a CSV / JSON Lines / "
                        f"Parquet file of texts ({', '.join(sorted(FILE_FORMATS))})")
    dataset = read_data_file(path)["train"]
    columns = dataset.column_names
    column = text_column or next((name for name in TEXT_COLUMNS if name in columns), None)
    if column not in columns:
        wanted = f"no column {text_column!r}" if text_column else f"none of the text columns {list(TEXT_COLUMNS)}"
        raise DataError(f"--transfer-set {path} has {wanted}; its columns are {columns}. "
                        f"Name the text column with --transfer-text-column.")
    check_text_feature(dataset, column, f"--transfer-set {path}", "--transfer-text-column")
    return [text or "" for text in dataset[column]], f"{path} (column {column!r})"


def build_transfer_set(spec: str, splits: Splits, *, text_column: str | None = None,
                       cache_dir: str | Path | None = None, limit: int | None = None) -> TransferSet:
    """The comments of ``spec`` that may be trained on next to ``splits``, at most ``limit`` of them, in file order."""
    texts, source = read_transfer_texts(spec, text_column, cache_dir)
    held_out = {normalise_text(text) for text in (*splits.validation.texts, *splits.test.texts)}
    trained_on = {normalise_text(text) for text in splits.train.texts}
    counts = {"read": len(texts), "test_or_validation": 0, "train": 0, "repeats": 0, "empty": 0}
    kept = {}  # normalised text -> the first comment that has it
    for text in texts:
        key = normalise_text(text)
        reason = ("empty" if not key else "test_or_validation" if key in held_out else "train" if key in trained_on
                  else "repeats" if key in kept else None)
        if reason:
            counts[reason] += 1
        else:
            kept[key] = text
    kept = list(kept.values())[:limit]
    if not kept:
        raise DataError(f"--transfer-set {source}: no comment is left after dropping those equal to a comment "
                        f"of the splits, repeats and empty texts")
    return TransferSet(kept, source, {**counts, "used": len(kept)})


def add_transfer_flags(parser) -> None:
    """The transfer set's flags, added to ``train.py``'s (experiments/train_extras.py)."""
    group = parser.add_argument_group("transfer set (the methods with loss kd)")
    group.add_argument("--transfer-set", help=f"unlabelled comments a distilled student also learns from: "
                                              f"'{INSULTS_UNLABELLED}' or a CSV / JSON Lines / Parquet file of texts")
    group.add_argument("--transfer-text-column", help="the transfer file's text column (default: the first of "
                       f"{', '.join(TEXT_COLUMNS)} it has)")


def transfer_flag_problem(args) -> str | None:
    """Why the parsed transfer flags cannot work together, or None."""
    if args.transfer_text_column and not args.transfer_set:
        return "--transfer-text-column names a column of the --transfer-set file, and none was given"
    return None


def transfer_comments(splits: Splits, args) -> tuple[list[str], dict | None]:
    """``train.main``'s ``transfer_set`` hook: the comments of ``--transfer-set`` (none without it) and what
    history.json records of them."""
    if not args.transfer_set:
        return [], None
    transfer = build_transfer_set(args.transfer_set, splits, text_column=args.transfer_text_column,
                                  cache_dir=args.cache_dir, limit=args.limit)
    if is_main_process():
        print(transfer.summary(), flush=True)
    return transfer.texts, {"source": transfer.source, "normalisation": "data.splits.normalise_text",
                            **transfer.counts}
