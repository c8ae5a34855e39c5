"""The behavioural report: verdicts at the run's threshold, the bare-insult finding, the failures file."""

import pytest

from conftest import tiny_classifier, tiny_tokenizer
from report.behaviour_cases import CAPABILITIES, NOT_TOXIC, TOXIC, Case
from report.behaviour import (bare_insult_finding, bare_insult_misses, bare_insult_table, capability_table,
                              failures_markdown, run_suite)
from evaluate import Scorer
from webapp.app import Predictor

CASES = [Case("you idiot", TOXIC, "bare insult"), Case("moron", TOXIC, "bare insult"),
         Case("thank you", NOT_TOXIC, "polite disagreement"), Case("i agree with the author", NOT_TOXIC,
                                                                   "polite disagreement")]


def test_a_case_passes_when_the_verdict_at_the_run_threshold_matches_its_label():
    model, tokenizer = tiny_classifier(layers=2), tiny_tokenizer()
    predictor = Predictor("tiny", model, tokenizer, max_length=32)
    probs = predictor.probabilities([c.text for c in CASES])
    threshold = float(sorted(probs)[1]) + 1e-9  # two cases at or above it, two below
    result = run_suite(Scorer(predictor.probabilities, 0, predictor), threshold, CASES)
    expected = [(p >= threshold) == (c.label == TOXIC) for p, c in zip(probs, CASES)]
    assert result["passed"] == expected and 0 < sum(expected) < 4
    assert result["pass_rates"]["bare insult"] == {"passed": sum(expected[:2]), "cases": 2, "rate": sum(expected[:2]) / 2}
    assert set(result["explanations"]) == {str(i) for i, ok in enumerate(expected) if not ok}, "failures only"
    failed = int(next(iter(result["explanations"])))
    assert [item["word"] for item in result["explanations"][str(failed)]] == CASES[failed].text.split()


def record(name, method, seed, bare_passed, primary=True, bare_cases=20):
    rates = {capability: {"passed": 10, "cases": 10, "rate": 1.0} for capability in CAPABILITIES}
    rates["bare insult"] = {"passed": bare_passed, "cases": bare_cases, "rate": bare_passed / bare_cases}
    return {"name": name, "method": method, "seed": seed, "primary": primary,
            "behaviour": {"threshold": 0.5, "pass_rates": rates, "overall": 0.9}}


BARE_CASES = [*(Case(f"insult {i}", TOXIC, "bare insult") for i in range(4)),
              Case("thank you", NOT_TOXIC, "polite disagreement")]


def scored(name, method, seed, probs, threshold):
    """A run's behaviour record: its P(toxic) on BARE_CASES and its validation threshold."""
    return {"name": name, "method": method, "seed": seed, "behaviour": {"threshold": threshold, "probs": probs}}


def test_each_lora_variant_is_compared_at_its_own_threshold_and_at_one_half():
    records = [scored("odd", "odd", 1, [0.9, 0.9, 0.9, 0.9, 0.1], 0.5),
               scored("even", "even", 1, [0.9, 0.9, 0.9, 0.4, 0.1], 0.5),   # misses one of four
               scored("lora", "lora", 1, [0.9, 0.3, 0.3, 0.3, 0.1], 0.25),  # at 0.25 it misses none, at 0.5 three
               scored("lora-kd", "lora-kd", 2, [0.9] * 4 + [0.1], 0.5)]      # no seed shared with the students
    rows = bare_insult_misses(records, BARE_CASES, resamples=200)
    assert [(row["variant"], row["threshold"]) for row in rows] == [("lora", "own"), ("lora", 0.5)]
    own, half = rows
    assert own["variant_misses"] == 0 and own["distilled_misses"] == 0.125 and own["difference"] == -0.125
    assert half["variant_misses"] == 0.75 and half["difference"] == 0.625 and half["cases"] == 4
    assert half["ci95"][0] <= half["difference"] <= half["ci95"][1]
    table = bare_insult_table(rows)
    assert "| `lora` | each run's own | 1 | 0% | 12% | −12.5 |" in table and "| `lora` | 0.5 | 1 | 75% |" in table
    assert bare_insult_finding(rows).startswith("Bare insults (4 cases from a few templates): of 2 comparisons")


def test_the_bare_insult_interval_draws_seeds_and_cases():
    same = [0.9, 0.9, 0.9, 0.9, 0.1]
    records = [scored(f"{m}-{s}", m, s, same if m != "lora" or s != 1 else [0.1, 0.1, 0.1, 0.1, 0.1], 0.5)
               for m in ("odd", "even", "lora") for s in (1, 2, 3)]
    row = bare_insult_misses(records, BARE_CASES, resamples=500)[1]
    assert row["difference"] == pytest.approx(1 / 3)  # one seed of three misses all four
    low, high = row["ci95"]
    assert low == 0 and high > 2 / 3, "drawing the all-missing seed twice or more is in the interval, never none of it"
    assert bare_insult_finding([]) is None


def test_capability_table_has_a_column_per_capability_and_a_row_per_run():
    table = capability_table([record("odd", "odd", 42, 19), record("lora", "lora", 42, 12)])
    header, _, odd, lora = table.splitlines()
    assert header.startswith("| Run | Threshold | bare insult (20) |") and header.count("|") == len(CAPABILITIES) + 4
    assert odd.startswith("| `odd` | 0.500 | 95% | 100% |") and lora.startswith("| `lora` | 0.500 | 60% |")


def test_failures_are_shown_side_by_side_contrasts_first_and_explained():
    def student(name, method, passed):
        return {"name": name, "method": method, "primary": True,
                "behaviour": {"passed": passed, "probs": [0.9 if ok else 0.1 for ok in passed],
                              "explanations": {str(i): [{"word": w, "contribution": -0.25}
                                                        for w in CASES[i].text.split()]
                                               for i, ok in enumerate(passed) if not ok}}}
    records = [student("odd", "odd", [True, False, True, True]), student("lora", "lora", [False, False, True, True]),
               student("teacher", "teacher", [False, False, False, False])]
    text = failures_markdown(records, CASES)
    bare = text[text.index("## bare insult"):text.index("## insult in context")]
    assert "| Case | Expected | `odd` | `lora` |" in bare, "students only, the teacher is not a student"
    rows = [line for line in bare.splitlines() if line.startswith("| ") and "Case" not in line]
    assert rows == ["| you idiot | toxic | ✓ 0.90 | ✗ 0.10 |", "| moron | toxic | ✗ 0.10 | ✗ 0.10 |"], \
        "the case only LoRA fails comes first"
    assert "- `lora` on “you idiot”: you −0.25 · idiot −0.25" in bare
    assert "`odd` on “you idiot”" not in bare
    assert "Every student passes every case." in text[text.index("## polite disagreement"):]
