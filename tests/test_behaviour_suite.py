"""The behavioural suite (report/behaviour_cases.py): its size, its capabilities, and that it is new text."""
import re
from collections import Counter

import pytest

from report.behaviour_cases import CAPABILITIES, NOT_TOXIC, TOXIC, suite
from data.load import load_splits
from data.splits import normalise_text

MIN_CASES = 200
MIN_CASES_PER_CAPABILITY = 20


# Case, accents' composed forms, punctuation and spacing do not make a comment new.
normalise = normalise_text


def test_the_suite_has_enough_cases_in_every_capability():
    counts = Counter(case.capability for case in suite())
    assert sum(counts.values()) >= MIN_CASES
    assert set(counts) == set(CAPABILITIES), "every capability of the issue, and no other"
    assert min(counts.values()) >= MIN_CASES_PER_CAPABILITY, counts


def test_cases_are_well_formed_and_distinct():
    cases = suite()
    assert all(case.text.strip() and case.label in (TOXIC, NOT_TOXIC) for case in cases)
    assert len({case.text for case in cases}) == len(cases), "a case is listed twice"
    for case in cases:
        if case.template:  # every literal part of the template survives in the text
            literal = [part for part in re.split(r"\{\w+\}", case.template) if part]
            assert all(part in case.text for part in literal), case


def test_labels_follow_the_definition_of_toxic():
    """Insults aimed at a participant are toxic; negated, undirected, profane-but-kind and neutral cases are not."""
    labels = {}
    for case in suite():
        labels.setdefault(case.capability, set()).add(case.label)
    assert labels["bare insult"] == labels["insult in context"] == labels["obfuscation"] == {TOXIC}
    assert labels["negation"] == labels["profanity without insult"] == {NOT_TOXIC}
    assert labels["identity terms"] == labels["polite disagreement"] == {NOT_TOXIC}
    directed = Counter(case.label for case in suite() if case.capability == "directed vs undirected")
    assert directed[TOXIC] == directed[NOT_TOXIC], "each harsh word once at a person, once at a thing"


def test_normalise_ignores_case_punctuation_and_spacing():
    assert normalise("You  IDIOT!!") == normalise("you idiot") == "you idiot"
    assert normalise("i.d.i.o.t") == "i d i o t"


@pytest.mark.assets
def test_no_case_is_a_comment_of_the_insults_data():
    splits = load_splits("insults")
    seen = {normalise(text) for split in (splits.train, splits.validation, splits.test) for text in split.texts}
    assert len(seen) > 6000, "the three splits were read"
    copied = [case.text for case in suite() if normalise(case.text) in seen]
    assert not copied, f"cases that are comments of the insults data: {copied}"
