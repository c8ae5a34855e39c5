"""The behavioural suite (report/behaviour_cases.py) run on every model: what a test-set score hides.

Each run answers every case at its own validation threshold, the one its test scores use, so a
pass rate says what the model does as served. A case passes when the verdict equals the label
the dataset's definition gives it. Reported here:

- the pass rate per capability per run (a table, and a heat map in ``report/plots.py``);
- for each capability, a few cases that the distilled and the LoRA students fail, side by side,
  with each failing model's word contributions (``serving/explain.py``), written to results/behaviour.md;
- a finding on the question that motivated the suite: do LoRA students let more bare
  insults through than distilled students? Runs are paired by training seed, and the difference
  carries a 95% t-interval over the seeds (Student's t, n − 1 degrees of freedom).
"""
import numpy as np
from scipy.stats import t as student_t

from report.behaviour_cases import CAPABILITIES, TOXIC, Case, suite
from evaluate import Scorer
from serving.explain import word_contributions
from evaluate import runs_by_method
from report.tables import markdown_table, signed

DISTILLED = ("odd", "even")
LORA = ("lora", "lora-kd")
BARE = "bare insult"
SHOWN_PER_CAPABILITY = 4


def run_suite(scorer: Scorer, threshold: float, cases: list[Case] | None = None) -> dict:
    """Every case's P(toxic) and verdict at ``threshold``, pass rates per capability, and an explanation per failure.

    Explanations need a Hugging Face model; the TF-IDF baseline's failures go unexplained.
    """
    cases = suite() if cases is None else cases
    probs = scorer.predict([case.text for case in cases])
    passed = [bool((p >= threshold) == (case.label == TOXIC)) for p, case in zip(probs, cases)]
    rates = {}
    for capability in CAPABILITIES:
        outcomes = [ok for ok, case in zip(passed, cases) if case.capability == capability]
        rates[capability] = {"passed": sum(outcomes), "cases": len(outcomes),
                             "rate": sum(outcomes) / len(outcomes) if outcomes else float("nan")}
    explanations = {} if scorer.predictor is None else {
        str(i): word_contributions(scorer.predictor, cases[i].text).as_json()
        for i, ok in enumerate(passed) if not ok}
    return {"threshold": threshold, "probs": probs.tolist(), "passed": passed, "pass_rates": rates,
            "overall": sum(passed) / len(passed), "explanations": explanations}


def suite_summary(cases: list[Case] | None = None) -> dict:
    """What the suite holds, for results.json: its size and the cases per capability."""
    cases = suite() if cases is None else cases
    return {"cases": len(cases), "source": "report/behaviour_cases.py",
            "capabilities": {name: sum(case.capability == name for case in cases) for name in CAPABILITIES}}


def capability_table(records: list[dict]) -> str:
    """Pass rate (%) per capability (columns) for every run (rows)."""
    header = ["Run", "Threshold", *(f"{name} ({stats['cases']})"
                                    for name, stats in records[0]["behaviour"]["pass_rates"].items()), "All"]
    rows = [[f"`{r['name']}`", f"{r['behaviour']['threshold']:.3f}",
             *(f"{100 * stats['rate']:.0f}%" for stats in r["behaviour"]["pass_rates"].values()),
             f"{100 * r['behaviour']['overall']:.0f}%"] for r in records]
    return markdown_table(header, rows)


def miss_rate(record: dict, capability: str = BARE) -> float:
    return 1 - record["behaviour"]["pass_rates"][capability]["rate"]


def bare_insult_finding(records: list[dict]) -> str | None:
    """Do the LoRA students miss more bare insults than the distilled ones? Paired by seed, with an interval."""
    grouped = runs_by_method(records)
    distilled = [m for m in DISTILLED if m in grouped]
    if "lora" not in grouped or not distilled:
        return None
    seeds = sorted(set(grouped["lora"]).intersection(*(grouped[m] for m in distilled)))
    if not seeds:
        return None
    lora = np.array([miss_rate(grouped["lora"][s]) for s in seeds])
    students = np.array([np.mean([miss_rate(grouped[m][s]) for m in distilled]) for s in seeds])
    differences = lora - students
    cases = records[0]["behaviour"]["pass_rates"][BARE]["cases"]
    sentence = (f"Bare insults ({cases} cases, each run at its validation threshold) let through: lora "
                f"{percent_spread(lora)}, distilled students ({' and '.join(distilled)}) {percent_spread(students)}; "
                f"lora − distilled {signed(100 * differences.mean(), 1)} points")
    if len(seeds) == 1:
        return (sentence + f" from a single seed ({seeds[0]}), so no interval. "
                + verdict(differences.mean(), differences.mean(), differences.mean(), single_seed=True))
    half_width = student_t.ppf(0.975, len(seeds) - 1) * differences.std(ddof=1) / np.sqrt(len(seeds))
    low, high = differences.mean() - half_width, differences.mean() + half_width
    per_seed = ", ".join(f"{signed(100 * d, 1)} (seed {s})" for s, d in zip(seeds, differences))
    return (sentence + f" (95% t-interval over {len(seeds)} seeds [{signed(100 * low, 1)}, {signed(100 * high, 1)}]; "
            f"per seed: {per_seed}). " + verdict(differences.mean(), low, high))


def percent_spread(values: np.ndarray) -> str:
    """Mean over seeds, with the range when there are several."""
    text = f"{100 * values.mean():.0f}%"
    return text + (f" ({100 * values.min():.0f}–{100 * values.max():.0f}% over seeds)" if len(values) > 1 else "")


def verdict(mean: float, low: float, high: float, single_seed: bool = False) -> str:
    if single_seed:
        if mean == 0:
            return "On this seed they miss the same share."
        return f"On this seed **{'lora' if mean > 0 else 'the distilled students'} miss{'es' if mean > 0 else ''} more**; " \
               f"more seeds (`make study`) would say whether that holds."
    if low > 0:
        return "**LoRA misses more bare insults than the distilled students**: the interval excludes 0."
    if high < 0:
        return "**LoRA misses fewer bare insults than the distilled students**: the interval excludes 0."
    return "The seeds cannot tell them apart: the interval contains 0."


def failures_markdown(records: list[dict], cases: list[Case] | None = None) -> str:
    """results/behaviour.md: per capability, cases failed by distilled or LoRA students, side by side, explained."""
    cases = suite() if cases is None else cases
    students = [r for r in records if r["primary"] and r["method"] in DISTILLED + LORA]
    parts = ["# Behavioural tests: failing cases, distilled against LoRA students",
             "Generated by `python -m report` from the suite in `report/behaviour_cases.py`. Each cell is the run's "
             "P(toxic) with ✓ (the verdict at its validation threshold matches the expected label) or ✗. Under each "
             "table, every failure is explained: each word's contribution to P(toxic), i.e. how much it drops "
             "when that word is left out (`serving/explain.py`; + pushes toward toxic, − toward not toxic)."]
    if not students:
        return "\n\n".join(parts + ["No distilled or LoRA student was evaluated."]) + "\n"
    for capability, description in CAPABILITIES.items():
        indices = [i for i, case in enumerate(cases) if case.capability == capability]
        shown = sorted((i for i in indices if any(not r["behaviour"]["passed"][i] for r in students)),
                       key=lambda i: (-group_disagreement(students, i), i))[:SHOWN_PER_CAPABILITY]
        parts.append(f"## {capability}\n\n{description}.")
        if not shown:
            parts.append("Every student passes every case.")
            continue
        header = ["Case", "Expected", *(f"`{r['name']}`" for r in students)]
        rows = [[f"{cases[i].text}", "toxic" if cases[i].label == TOXIC else "not toxic",
                 *(f"{'✓' if r['behaviour']['passed'][i] else '✗'} {r['behaviour']['probs'][i]:.2f}" for r in students)]
                for i in shown]
        explained = [f"- `{r['name']}` on “{cases[i].text}”: {contributions_text(r['behaviour']['explanations'][str(i)])}"
                     for i in shown for r in students if not r["behaviour"]["passed"][i]]
        parts += [markdown_table(header, rows), "\n".join(explained)]
    return "\n\n".join(parts) + "\n"


def group_disagreement(students: list[dict], index: int) -> float:
    """|failure share of the LoRA students − that of the distilled students| on one case: contrasts first."""
    def failure_share(methods):
        group = [not r["behaviour"]["passed"][index] for r in students if r["method"] in methods]
        return np.mean(group) if group else 0.0
    return abs(failure_share(LORA) - failure_share(DISTILLED))


def contributions_text(explanation: list[dict]) -> str:
    return " · ".join(f"{item['word']} {signed(item['contribution'], 2)}" for item in explanation)
