"""Load a dataset, named by one string, as train / validation / test splits of texts and 0/1 labels.

The name is ``insults`` (the default: the Kaggle insults data, official train / test split) or ``toxic-comments``
(Jigsaw and Davidson offensive comments, fixed splits), both embedded (a local file so named is ``./insults``); a
local CSV, JSON Lines or Parquet file; a local folder (``save_to_disk``'s, or laid out like a hub dataset); or a
hub dataset id such as ``tdavidson/hate_speech_offensive``. Every source then takes the same steps: find the text
and label columns, drop rows with an empty text or no label (and say how many), map the labels to toxic / not
toxic (``data/labels.py``), carve the missing splits out of train (``data/splits.py``).
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
from data.assets import EMBEDDED_DATASETS, AssetError, hub_reachable

TEXT_COLUMNS = ("text", "comment", "tweet", "Comment")
LABEL_COLUMNS = ("label", "labels", "class", "Insult", "toxic")
FILE_FORMATS = {".csv": "csv", ".jsonl": "json", ".json": "json", ".parquet": "parquet"}
VALIDATION_SPLIT_NAMES = ("validation", "valid", "dev")
# What the hub accepts as a dataset id: "name" or "owner/name" (letters, digits, "-", "_", ".").
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")
_ALTERNATIVES = ("Pass 'insults' or 'toxic-comments' (embedded) or a local CSV / JSON Lines / Parquet file "
                 "or save_to_disk folder instead.")


def load_splits(name: str = "insults", *, text_column: str | None = None, label_column: str | None = None,
                toxic_labels: Sequence[str | int] | str | None = None, val_fraction: float = 0.1, seed: int = 42,
                cache_dir: str | Path | None = None) -> Splits:
    """Load ``name`` and print one line per split: its size, its toxic rate, and what was dropped or carved.
    ``toxic_labels`` overrides the label rule; ``cache_dir`` holds the embedded data. Errors say what to change."""
    named_splits, source = open_dataset(name, cache_dir)
    by_role = _splits_by_role(named_splits, source)
    columns = by_role["train"].column_names
    text_column = text_column or next((column for column in TEXT_COLUMNS if column in columns), None)
    label_column = label_column or next((column for column in LABEL_COLUMNS if column in columns), None)
    for what, column, candidates in (("text", text_column, TEXT_COLUMNS), ("label", label_column, LABEL_COLUMNS)):
        if column is None:
            raise DataError(f"no {what} column found (tried {list(candidates)}); the columns are {columns}. "
                            f"Name the {what} column with --{what}-column.")
    for role, dataset in by_role.items():
        for column, flag in ((text_column, "--text-column"), (label_column, "--label-column")):
            if column not in dataset.column_names:
                raise DataError(f"the {role} split of {source} has no column {column!r}; its columns are "
                                f"{dataset.column_names}. Name the right one with {flag}.")
        check_text_feature(dataset, text_column, source, "--text-column")
    label_feature = by_role["train"].features[label_column]
    class_names = label_feature.names if isinstance(label_feature, datasets.ClassLabel) else None

    def unlabelled(value) -> bool:  # None, or -1 in a ClassLabel column: how ``datasets`` marks a missing label
        return value is None or (class_names is not None and value == -1)

    rows, notes = {}, {}
    for role, dataset in by_role.items():
        texts, values = list(dataset[text_column]), list(dataset[label_column])
        if role != "train" and all(map(unlabelled, values)):
            continue  # hub test splits often hide their labels (-1): carve a labelled one instead
        has_text = [text is not None and text.strip() != "" for text in texts]
        has_label = [not unlabelled(value) for value in values]
        keep = [i for i in range(len(texts)) if has_text[i] and has_label[i]]
        if not keep:
            raise DataError(f"the {role} split of {source} has no row with both a non-empty "
                            f"{text_column!r} and a {label_column!r} label")
        dropped = {"empty texts": has_text.count(False),
                   "unlabelled rows": sum(t and not y for t, y in zip(has_text, has_label))}
        notes[role] = ", ".join(f"{count:,} {what} dropped" for what, count in dropped.items() if count)
        rows[role] = ([texts[i] for i in keep], [values[i] for i in keep])

    mapping = binary_label_mapping(chain.from_iterable(values for _, values in rows.values()),
                                   class_names, toxic_labels)
    found = {role: Split(texts, mapping.apply(values)) for role, (texts, values) in rows.items()}
    splits = carve_splits(found["train"], found.get("validation"), found.get("test"),
                          val_fraction=val_fraction, seed=seed, source=source)
    print(f"dataset {source}: text {text_column!r}, label {label_column!r} ({mapping.rule})", flush=True)
    for role, fraction in (("train", None), ("validation", val_fraction), ("test", TEST_FRACTION)):
        split = getattr(splits, role)
        note = notes[role] if role in found else f"carved from train: {fraction:.0%}, stratified"
        print(f"  {role:<10} {len(split):>7,} examples  {split.positive_rate:6.1%} toxic"
              + (f"  ({note})" if note else ""), flush=True)
    return splits


def open_dataset(name: str, cache_dir: str | Path | None = None) -> tuple[dict[str, datasets.Dataset], str]:
    """The named splits of the dataset called ``name``, and a description of its source."""
    if name in EMBEDDED_DATASETS:
        load_embedded, source = EMBEDDED_DATASETS[name]
        try:
            return dict(load_embedded(cache_dir)), source
        except AssetError as error:
            raise DataError(str(error)) from error
    path = Path(name).expanduser()
    if path.is_file():
        return read_data_file(path), str(path)
    if (path / "dataset_dict.json").is_file() or (path / "state.json").is_file():  # written by save_to_disk
        try:
            loaded = datasets.load_from_disk(str(path))
        except (DatasetsError, ValueError, OSError) as error:
            raise DataError(f"could not read the saved dataset in {path}: {_reason(error)}") from error
        return (dict(loaded) if isinstance(loaded, datasets.DatasetDict) else {"train": loaded}), str(path)
    if path.is_dir():
        return read_dataset_repository(str(path)), str(path)
    if looks_like_path(name):
        raise DataError(f"no such file or folder: {name} (resolved to {path.resolve()}). "
                        f"Pass 'insults', 'toxic-comments', a hub dataset id, or an existing local file or folder.")
    # Fail at once if the hub cannot be reached: its client would retry for a minute. In offline mode
    # (HF_HUB_OFFLINE=1) load_dataset reads only the local cache and fails fast by itself.
    if not datasets.config.HF_HUB_OFFLINE and not hub_reachable():
        raise DataError(f"{name!r} is no local file or folder, so it was taken as a hub dataset id, but "
                        f"the hub ({datasets.config.HF_ENDPOINT}) cannot be reached from this machine. "
                        + _ALTERNATIVES)
    return read_dataset_repository(name), name


def looks_like_path(name: str) -> bool:
    """Whether ``name`` can only mean a local path: it is no hub id, or it ends like a data file."""
    return not _HUB_ID.fullmatch(name) or Path(name).suffix.lower() in FILE_FORMATS


def read_data_file(path: Path) -> dict[str, datasets.Dataset]:
    """Read one CSV / JSON Lines / Parquet file as a ``train`` split, converted to Arrow in a throwaway folder."""
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


def read_dataset_repository(name: str) -> dict[str, datasets.Dataset]:
    """``datasets.load_dataset`` on a hub dataset id (downloaded once per machine) or a folder laid out like one."""
    try:
        return dict(datasets.load_dataset(name))
    except DatasetNotFoundError as error:
        raise DataError(f"{name!r} is no local file or folder, and the hub has no dataset of that id "
                        f"(or it is private or gated): {_reason(error)}. " + _ALTERNATIVES) from error
    except (DatasetsError, ValueError, OSError) as error:  # ConnectionError is an OSError
        raise DataError(f"could not load the dataset {name!r}: {_reason(error)}. " + _ALTERNATIVES) from error


def _splits_by_role(named_splits: dict[str, datasets.Dataset], source: str) -> dict[str, datasets.Dataset]:
    """Which of the source's splits is train, validation and test (the last two may be missing)."""
    names = list(named_splits)
    if "train" not in named_splits and len(names) != 1:
        raise DataError(f"{source} has no 'train' split; its splits are {names}")
    train = "train" if "train" in named_splits else names[0]
    validation = next((n for n in VALIDATION_SPLIT_NAMES if n in named_splits and n != train), None)
    roles = {"train": train, "validation": validation, "test": "test" if train != "test" else None}
    return {role: named_splits[split] for role, split in roles.items() if split in named_splits}


def check_text_feature(dataset: datasets.Dataset, column: str, source: str, flag: str) -> None:
    """A one-line DataError unless ``column`` holds strings (``flag`` names the option that picks it)."""
    feature = dataset.features[column]
    if not (isinstance(feature, datasets.Value) and feature.dtype in ("string", "large_string")):
        raise DataError(f"column {column!r} of {source} holds {feature}, not text; name the text column with {flag}")


def _reason(error: BaseException) -> str:
    """The innermost message: ``datasets`` wraps parser errors in a generic DatasetGenerationError."""
    while error.__cause__ is not None:
        error = error.__cause__
    return f"{type(error).__name__}: {error}"
