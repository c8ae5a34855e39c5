"""load_splits on every kind of source, and the errors it must give on bad input."""
import json
import time

import datasets
import pytest

import data.load
from data import DataError
from data.load import load_splits, looks_like_path

FEATURES = datasets.Features({"tweet": datasets.Value("string"),
                              "class": datasets.ClassLabel(names=["hate speech", "offensive language", "neither"])})


def toy_rows(n: int, positive_every: int = 4) -> tuple[list[str], list[int]]:
    return [f"comment number {i}" for i in range(n)], [int(i % positive_every == 0) for i in range(n)]


@pytest.fixture(autouse=True)
def hf_cache_in_tmp(tmp_path, monkeypatch):
    """Keep the Arrow files datasets writes for hub-style folders out of the user's cache."""
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-datasets-cache")


def test_csv_with_default_columns_drops_and_reports_empty_texts(tmp_path, capsys):
    texts, labels = toy_rows(40)
    lines = ["text,label"] + [f"{t},{y}" for t, y in zip(texts, labels)] + [",1", "   ,0"]
    (tmp_path / "comments.csv").write_text("\n".join(lines) + "\n")
    splits = load_splits(str(tmp_path / "comments.csv"))
    assert len(splits.train) + len(splits.validation) + len(splits.test) == 40
    assert len(splits.test) == 4 and len(splits.validation) == 4
    assert set(splits.test.texts) <= set(texts)
    assert "2 empty texts dropped" in capsys.readouterr().out


def test_jsonl_with_scores(tmp_path):
    texts, _ = toy_rows(30)
    scores = [round(i / 29, 3) for i in range(30)]
    with open(tmp_path / "scored.jsonl", "w") as f:
        for text, score in zip(texts, scores):
            f.write(json.dumps({"comment": text, "toxic": score}) + "\n")
    splits = load_splits(str(tmp_path / "scored.jsonl"), seed=0)
    everything = dict(zip(splits.train.texts + splits.validation.texts + splits.test.texts,
                          splits.train.labels + splits.validation.labels + splits.test.labels))
    assert everything == {text: int(score >= 0.5) for text, score in zip(texts, scores)}


def test_parquet_with_named_columns_and_boolean_labels(tmp_path):
    texts, labels = toy_rows(30)
    datasets.Dataset.from_dict({"body": texts, "is_abuse": [bool(y) for y in labels]}).to_parquet(
        tmp_path / "comments.parquet")
    splits = load_splits(str(tmp_path / "comments.parquet"), text_column="body", label_column="is_abuse")
    assert sum(splits.train.labels + splits.validation.labels + splits.test.labels) == sum(labels)


def test_save_to_disk_dataset_dict_keeps_its_test_split(tmp_path):
    texts, labels = toy_rows(50)
    test = datasets.Dataset.from_dict({"text": ["held out one", "held out two"], "label": [1, 0]})
    datasets.DatasetDict({"train": datasets.Dataset.from_dict({"text": texts, "label": labels}),
                          "test": test}).save_to_disk(tmp_path / "saved")
    splits = load_splits(str(tmp_path / "saved"), val_fraction=0.2)
    assert splits.test.texts == ["held out one", "held out two"] and splits.test.labels == [1, 0]
    assert len(splits.validation) == 10 and len(splits.train) == 40


def test_save_to_disk_single_dataset_is_train(tmp_path):
    texts, labels = toy_rows(50)
    datasets.Dataset.from_dict({"text": texts, "label": labels}).save_to_disk(tmp_path / "saved")
    splits = load_splits(str(tmp_path / "saved"))
    assert len(splits.train) + len(splits.validation) + len(splits.test) == 50
    assert len(splits.test) == 5


def test_hub_layout_goes_through_load_dataset_with_class_names(tmp_path, capsys):
    """A hub dataset repository as files (here written locally), read by the hub code path."""
    repo = tmp_path / "hate_speech_offensive"
    (repo / "data").mkdir(parents=True)
    classes = [i % 3 for i in range(60)]
    train = datasets.Dataset.from_dict({"tweet": [f"tweet {i}" for i in range(60)], "class": classes},
                                       features=FEATURES)
    train.to_parquet(repo / "data" / "train-00000-of-00001.parquet")
    # the test split hides its labels (-1), as many hub datasets do: one is carved from train instead
    datasets.Dataset.from_dict({"tweet": ["a", "b"], "class": [-1, -1]}, features=FEATURES).to_parquet(
        repo / "data" / "test-00000-of-00001.parquet")

    splits = data.load.read_dataset_repository(str(repo))
    assert isinstance(splits["train"].features["class"], datasets.ClassLabel)
    loaded = load_splits(str(repo))
    everything = dict(zip(loaded.train.texts + loaded.validation.texts + loaded.test.texts,
                          loaded.train.labels + loaded.validation.labels + loaded.test.labels))
    assert everything == {f"tweet {i}": int(c in (0, 1)) for i, c in enumerate(classes)}
    printed = capsys.readouterr().out
    assert "['hate speech', 'offensive language'] -> toxic" in printed
    assert "test" in printed and "carved from train" in printed


def test_rows_without_a_label_are_dropped_and_counted(tmp_path, capsys):
    classes = [i % 3 for i in range(30)] + [-1, -1]
    datasets.Dataset.from_dict({"tweet": [f"tweet {i}" for i in range(32)], "class": classes},
                               features=FEATURES).save_to_disk(tmp_path / "saved")
    splits = load_splits(str(tmp_path / "saved"))
    assert len(splits.train) + len(splits.validation) + len(splits.test) == 30
    assert "2 unlabelled rows dropped" in capsys.readouterr().out


def test_hub_id_without_network_says_what_to_pass_instead(monkeypatch):
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(data.load, "hub_reachable", lambda: False)
    with pytest.raises(DataError, match="cannot be reached") as error:
        load_splits("tdavidson/hate_speech_offensive")
    assert "'insults'" in str(error.value) and "local CSV" in str(error.value)


def test_unknown_hub_id_fails_fast_with_what_to_pass_instead():
    """The real path: offline here (fast probe) or, with internet, no such dataset on the hub."""
    start = time.monotonic()
    with pytest.raises(DataError, match="'insults'"):
        load_splits("no-such-owner-7f3a9/no-such-dataset-7f3a9")
    assert time.monotonic() - start < 15


@pytest.mark.parametrize("name, path_like", [
    ("tdavidson/hate_speech_offensive", False), ("imdb", False), ("comments.csv", True),
    ("data/comments.jsonl", True), ("./saved", True), ("/tmp/a/b", True), ("~/saved", True), ("a/b/c", True),
])
def test_looks_like_path(name, path_like):
    assert looks_like_path(name) is path_like


@pytest.mark.parametrize("name", ["missing.csv", "./saved_dataset", "some/where/data", "/no/such/folder"])
def test_missing_file_is_not_taken_for_a_hub_id(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match="no such file or folder"):
        load_splits(name)


def test_missing_default_column_lists_the_columns(tmp_path):
    (tmp_path / "c.csv").write_text("body,label\nhello,0\nworld,1\n")
    with pytest.raises(DataError, match=r"no text column found .*\['body', 'label'\].*--text-column"):
        load_splits(str(tmp_path / "c.csv"))


def test_missing_named_column_lists_the_columns(tmp_path):
    (tmp_path / "c.csv").write_text("text,label\nhello,0\nworld,1\n")
    with pytest.raises(DataError, match=r"no column 'toxicity'.*\['text', 'label'\]"):
        load_splits(str(tmp_path / "c.csv"), label_column="toxicity")


def test_a_text_column_that_holds_no_text_is_an_error(tmp_path):
    (tmp_path / "c.csv").write_text("text,label\n1,0\n2,1\n")
    with pytest.raises(DataError, match="not text"):
        load_splits(str(tmp_path / "c.csv"))


def test_unmappable_labels_name_the_values_and_the_flag(tmp_path):
    texts, _ = toy_rows(30)
    (tmp_path / "c.csv").write_text("text,label\n" + "".join(f"{t},{i % 3}\n" for i, t in enumerate(texts)))
    with pytest.raises(DataError, match=r"0, 1, 2.*--toxic-labels"):
        load_splits(str(tmp_path / "c.csv"))
    splits = load_splits(str(tmp_path / "c.csv"), toxic_labels=["2"])
    assert sum(splits.train.labels + splits.validation.labels + splits.test.labels) == 10


def test_only_empty_texts_is_an_error(tmp_path):
    (tmp_path / "c.jsonl").write_text('{"text": "", "label": 1}\n{"text": " ", "label": 0}\n')
    with pytest.raises(DataError, match="no row with both a non-empty 'text'"):
        load_splits(str(tmp_path / "c.jsonl"))


def test_unreadable_file_is_an_error(tmp_path):
    (tmp_path / "c.parquet").write_bytes(b"this is not parquet")
    with pytest.raises(DataError, match="could not read .*c.parquet as parquet"):
        load_splits(str(tmp_path / "c.parquet"))


def test_unsupported_file_type_is_an_error(tmp_path):
    (tmp_path / "c.txt").write_text("hello\n")
    with pytest.raises(DataError, match=r"must end in one of \['.csv', '.json', '.jsonl', '.parquet'\]"):
        load_splits(str(tmp_path / "c.txt"))
