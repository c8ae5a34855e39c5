"""The behavioural report: verdicts at the run's threshold, the bare-insult finding, the failures file."""

from conftest import tiny_classifier, tiny_tokenizer
from report.behaviour_cases import CAPABILITIES, NOT_TOXIC, TOXIC, Case
from report.behaviour import bare_insult_finding, capability_table, failures_markdown, run_suite
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


def test_bare_insult_finding_pairs_seeds_and_gives_a_t_interval():
    records = [record("odd", "odd", 42, 19), record("even", "even", 42, 17), record("lora", "lora", 42, 12),
               record("odd-seed1", "odd", 1, 20, False), record("even-seed1", "even", 1, 18, False),
               record("lora-seed1", "lora", 1, 14, False)]
    sentence = bare_insult_finding(records)
    # misses: seed 1: lora 30%, distilled (0% + 10%) / 2 = 5% -> +25; seed 42: lora 40%, distilled 10% -> +30
    assert "lora 35% (30–40% over seeds)" in sentence and "distilled students (odd and even) 8%" in sentence
    assert "lora − distilled +27.5 points" in sentence
    # mean 27.5, sd 3.536, t(0.975, 1) = 12.706: half-width 31.8
    assert "95% t-interval over 2 seeds [−4.3, +59.3]" in sentence
    assert "per seed: +25.0 (seed 1), +30.0 (seed 42)" in sentence
    assert sentence.endswith("The seeds cannot tell them apart: the interval contains 0.")


def test_bare_insult_finding_with_one_seed_says_so():
    sentence = bare_insult_finding([record("odd", "odd", 42, 20), record("lora", "lora", 42, 15)])
    assert "+25.0 points from a single seed (42), so no interval" in sentence
    assert bare_insult_finding([record("odd", "odd", 42, 20)]) is None


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
