"""docs/analysis.md is prose, written by hand, so its verdicts are checked against the rows it cites.

It cites a paired comparison as ``*a − b*: <verdict>``, with the verdict word for word as the
report words it (``evaluate.verdict_words``): "a better", "no difference detected; the interval allows ±X",
or, where only the raw interval excludes 0, "no difference detected; the raw interval excludes 0; the
difference does not survive Holm's correction". A verdict that no longer matches the committed
results/results.json (a study rerun, a changed interval) fails here.
"""
import json
import re

from conftest import ROOT
from evaluate import PRIMARY_PAIRS, verdict_words

ANALYSIS = ROOT / "docs" / "analysis.md"
CITATION = re.compile(r"\*([\w-]+) − ([\w-]+)\*: (no difference detected; (?:the interval allows ±\d\.\d{3}|"
                      r"the raw interval excludes 0; the difference does not survive Holm's correction)|[\w-]+ better)")


def cited_verdicts(text: str) -> list[tuple[str, str, str]]:
    return CITATION.findall(" ".join(text.split()))  # a citation may wrap across lines


def test_every_verdict_the_analysis_cites_is_the_verdict_of_its_row():
    comparisons = json.loads((ROOT / "results" / "results.json").read_text(encoding="utf-8"))["comparisons"]
    citations = cited_verdicts(ANALYSIS.read_text(encoding="utf-8"))
    for a, b, said in citations:
        assert f"{a}_vs_{b}" in comparisons, f"docs/analysis.md cites *{a} − {b}*, which the study does not compare"
        assert said == verdict_words(comparisons[f"{a}_vs_{b}"]), f"docs/analysis.md misquotes *{a} − {b}*"
    assert {(a, b) for a, b, _ in citations} >= set(PRIMARY_PAIRS), "the analysis must give the question's verdicts"


def test_a_misquoted_verdict_is_caught():
    comparison = {"verdict": "no difference detected", "ci95": [-0.0035, 0.0126]}
    assert cited_verdicts("*odd − even*: no difference\n detected; the interval allows ±0.013.") == \
        [("odd", "even", verdict_words(comparison))]
    assert cited_verdicts("*odd − even*: odd better.") != [("odd", "even", verdict_words(comparison))]
    raw = {"verdict": "no difference detected", "ci95": [0.0004, 0.0229]}
    assert cited_verdicts("*even − lora*: no difference detected; the interval allows ±0.023.") != \
        [("even", "lora", verdict_words(raw))], "an interval that excludes 0 is not quoted as allowing 0"
    assert cited_verdicts("*even − lora*: no difference detected; the raw interval excludes 0; the difference\n"
                          " does not survive Holm's correction.") == [("even", "lora", verdict_words(raw))]
