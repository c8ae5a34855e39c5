import pytest

from data import DataError
from data.labels import binary_label_mapping, is_toxic_name

HATE_SPEECH_OFFENSIVE = ["hate speech", "offensive language", "neither"]


def test_class_names_hate_and_offensive_are_toxic_neither_is_not():
    mapping = binary_label_mapping([0, 1, 2, 2, 1], class_names=HATE_SPEECH_OFFENSIVE)
    assert mapping.binary == {0: 1, 1: 1, 2: 0}
    assert mapping.apply([2, 0, 1]) == [0, 1, 1]


@pytest.mark.parametrize("name, toxic", [
    ("toxic", True), ("non-toxic", False), ("nontoxic", False), ("not_offensive", False),
    ("OFFENSIVE", True), ("insult", True), ("abusive", True), ("normal", False), ("neither", False),
])
def test_is_toxic_name(name, toxic):
    assert is_toxic_name(name) is toxic


def test_string_labels_are_read_as_class_names():
    assert binary_label_mapping(["abusive", "clean", "clean"]).binary == {"abusive": 1, "clean": 0}


def test_zero_one_integers_and_booleans_are_taken_as_they_are():
    assert binary_label_mapping([0, 1, 1]).binary == {0: 0, 1: 1}
    assert binary_label_mapping([True, False]).binary == {True: 1, False: 0}


def test_scores_between_zero_and_one_are_toxic_from_one_half():
    assert binary_label_mapping([0.0, 0.2, 0.5, 0.9]).apply([0.0, 0.2, 0.5, 0.9]) == [0, 0, 1, 1]


def test_toxic_labels_override_every_other_rule():
    by_name = binary_label_mapping([0, 1, 2], class_names=HATE_SPEECH_OFFENSIVE, toxic_labels=["hate speech"])
    assert by_name.binary == {0: 1, 1: 0, 2: 0}
    by_value = binary_label_mapping([0, 1, 2], toxic_labels="0, 2")  # as typed on the command line
    assert by_value.binary == {0: 1, 1: 0, 2: 1}


@pytest.mark.parametrize("values, class_names", [
    ([0, 1, 2], None),                      # three classes, no names
    (["positive", "negative"], None),       # names that say nothing about toxicity
    ([0, 1], ["negative", "positive"]),
    ([0, 1, -1], HATE_SPEECH_OFFENSIVE),    # -1 is no class
    ([0.2, 3.5], None),                     # not scores in [0, 1]
])
def test_labels_that_cannot_be_mapped_name_the_values_and_the_way_out(values, class_names):
    with pytest.raises(DataError, match="--toxic-labels") as error:
        binary_label_mapping(values, class_names=class_names)
    assert repr(values[-1]) in str(error.value)


def test_toxic_labels_that_never_occur_are_an_error():
    with pytest.raises(DataError, match="none of the toxic labels"):
        binary_label_mapping([0, 1], toxic_labels=["toxic"])


def test_multi_label_lists_are_an_error():
    with pytest.raises(DataError, match="one value"):
        binary_label_mapping([[0, 3], [1]])
