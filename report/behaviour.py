"""The behavioural suite (report/behaviour_cases.py) run on every model: what a test-set score hides.

Each run answers every case at its own validation threshold, the one its test scores use, so a
pass rate says what the model does as served. A case passes when the verdict equals the label
the dataset's definition gives it. Reported here:

- the pass rate per capability per run (a table, and a heat map in ``report/plots.py``);
- for each capability, a few cases that the distilled and the LoRA students fail, side by side,
  with each failing model's word contributions (``serving/explain.py``), written to results/behaviour.md;
- the question that motivated the suite: do LoRA students let more bare insults through than
  distilled students? For each LoRA variant, at each run's threshold and at 0.5, paired by seed,
  with a bootstrap over the seeds and the cases (``bare_insult_misses``).
"""
import numpy as np

from report.behaviour_cases import CAPABILITIES, TOXIC, Case, suite
from evaluate import Scorer
from serving.explain import word_contributions
from evaluate import runs_by_method
from report.tables import markdown_table, signed

DISTILLED = ("odd", "even")
LORA = ("lora", "lora-kd")
LORA_VARIANTS = ("lora", "lora-kd", "lora-odd", "lora-minilm")
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


def bare_insult_misses(records: list[dict], cases: list[Case] | None = None, resamples: int = 2000,
                       seed: int = 0) -> list[dict]:
    """Per LoRA variant, the share of bare insults it lets through minus the distilled students' (odd, even).

    Runs are paired by training seed. Each comparison is made twice: at every run's own validation
    threshold (as served) and at 0.5 (the thresholds range widely, and move the count). Its 95%
    interval is a percentile bootstrap that draws the seeds and the cases with replacement: the
    bare insults come from a few templates, so the cases are a sample too.
    """
    cases = suite() if cases is None else cases
    bare = np.array([case.capability == BARE for case in cases])
    toxic = np.array([case.label == TOXIC for case in cases])[bare]
    grouped = runs_by_method(records)
    distilled = [method for method in DISTILLED if method in grouped]
    rows = []
    for variant in (method for method in LORA_VARIANTS if method in grouped and distilled):
        seeds = sorted(set(grouped[variant]).intersection(*(grouped[m] for m in distilled)))
        for at in ("own", 0.5) if seeds else ():
            def misses(record: dict) -> np.ndarray:
                threshold = record["behaviour"]["threshold"] if at == "own" else at
                return ((np.asarray(record["behaviour"]["probs"])[bare] >= threshold) != toxic).astype(float)
            own = np.array([misses(grouped[variant][s]) for s in seeds])  # [seeds, cases]
            theirs = np.array([np.mean([misses(grouped[m][s]) for m in distilled], axis=0) for s in seeds])
            rng = np.random.default_rng(seed)
            drawn_seeds = rng.integers(0, len(seeds), (resamples, len(seeds), 1))
            drawn_cases = rng.integers(0, bare.sum(), (resamples, 1, bare.sum()))
            resampled = (own - theirs)[drawn_seeds, drawn_cases].mean(axis=(1, 2))
            rows.append({"variant": variant, "threshold": at, "seeds": seeds, "cases": int(bare.sum()),
                         "variant_misses": float(own.mean()), "distilled_misses": float(theirs.mean()),
                         "difference": float((own - theirs).mean()),
                         "ci95": [float(x) for x in np.percentile(resampled, [2.5, 97.5])]})
    return rows


def bare_insult_table(rows: list[dict]) -> str:
    """``bare_insult_misses`` as a table, in percentage points, with the verdict each interval allows."""
    def said(row):
        low, high = row["ci95"]
        if low <= 0 <= high:
            return f"no difference detected; the interval allows ±{100 * max(-low, high):.1f} points"
        return f"{row['variant']} lets {'more' if low > 0 else 'fewer'} through"
    return markdown_table(
        ["LoRA variant", "Threshold", "Seeds", "Let through: variant", "Distilled (odd, even)", "Δ (points)",
         "95% CI (seeds and cases)", "Verdict"],
        [[f"`{row['variant']}`", "each run's own" if row["threshold"] == "own" else "0.5",
          ", ".join(map(str, row["seeds"])), f"{100 * row['variant_misses']:.0f}%",
          f"{100 * row['distilled_misses']:.0f}%", signed(100 * row["difference"], 1),
          "[{}, {}]".format(*(signed(100 * x, 1) for x in row["ci95"])), said(row)] for row in rows])


def bare_insult_finding(rows: list[dict]) -> str | None:
    """One sentence: how many LoRA variants let more bare insults through, at which thresholds."""
    if not rows:
        return None
    more = [f"`{row['variant']}` ({'its own threshold' if row['threshold'] == 'own' else 'at 0.5'})"
            for row in rows if row["ci95"][0] > 0]
    return (f"Bare insults ({rows[0]['cases']} cases from a few templates): of {len(rows)} comparisons of a LoRA "
            f"variant with the distilled students, at each run's threshold and at 0.5, "
            + (f"{len(more)} find the variant letting more through: {', '.join(more)}" if more else
               "none finds a LoRA variant letting more through")
            + "; the others detect no difference (docs/behaviour.md has the table).")


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
