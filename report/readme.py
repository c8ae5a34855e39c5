"""The README's first screen, and the marked sections through which every generated text reaches a file.

A generated section sits between ``<!-- name:start -->`` and ``<!-- name:end -->``. Only the text
between the markers is replaced, so the hand-written prose around it is never touched, and
regenerating refreshes the numbers instead of appending a copy.

The answer section leads the README: the question's four models (and LoRA with distillation) as
test ROC-AUC mean ± std over the training seeds, each one's difference with LoRA and its 95%
interval, and the verdict in words with its caveats. Every number comes from results.json (and the
tuning grid from tuning.json), so the README cannot say something the study did not measure.
"""
from pathlib import Path

from evaluate import interval_allows, verdict_words
from report.tables import MODEL_TYPES, markdown_table, mean_std_cell, signed, verdict_cell
from training.files import write_text_atomically

ANSWER = "answer"
ANSWER_METHODS = ("teacher", "odd", "even", "lora", "lora-kd")
REFERENCE = "lora"
STUDENTS = ("odd", "even")  # the two distilled students the question asks about
BASELINE = "minilm"  # a pretrained 6-layer model fine-tuned directly: outside the question, but the bar to clear
STRONG = "strong"  # the ablation family of the stronger teacher (experiments/ablations.py)
# Its rows that answer what a stronger teacher changes: the teacher itself, its soft labels on odd's start, on minilm.
STRONG_ROWS = ("teacher-strong", "strong-odd", "minilm-kd")


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def replace_marked_section(text: str, name: str, section: str) -> str | None:
    """``text`` with ``section`` between the markers of ``name``, or None if the markers are missing."""
    start_marker, end_marker = markers(name)
    start, end = text.find(start_marker), text.find(end_marker)
    if start < 0 or end < start:
        return None
    return f"{text[:start + len(start_marker)]}\n{section.strip()}\n{text[end:]}"


def update_marked_section(path: Path, name: str, section: str) -> str:
    """Write ``section`` into the file at ``path``; returns what happened, for the console."""
    path = Path(path)
    if not path.is_file():
        return f"{path} does not exist; its {name} section was not written"
    updated = replace_marked_section(path.read_text(encoding="utf-8"), name, section)
    if updated is None:
        start_marker, end_marker = markers(name)
        return f"{path} has no {start_marker} ... {end_marker} markers; left unchanged"
    write_text_atomically(path, updated)
    return f"updated the {name} section of {path}"


def difference_with(comparisons: dict[str, dict], method: str, reference: str = REFERENCE) -> dict | None:
    """``method − reference`` on test ROC-AUC, as the study stored it or with its sign flipped.

    The study stores each comparison in one direction (``lora − odd``, say). Flipping it is exact: the
    interval is symmetric about the difference, so the flipped one is the stored one mirrored.
    None when the two were not compared (or the comparison was skipped).
    """
    for result in comparisons.values():
        if "skipped" in result:
            continue
        if (result["a"], result["b"]) == (method, reference):
            return {**result, "per_seed": list(result["per_seed_differences"].values())}
        if (result["a"], result["b"]) == (reference, method):
            low, high = result["ci95"]
            return {**result, "difference": -result["difference"], "ci95": [-high, -low],
                    "per_seed": [-d for d in result["per_seed_differences"].values()]}
    return None


def answer_table(results: dict) -> str:
    """One row per method of the question: its seed mean, and its difference with LoRA where the study has one."""
    seeds, comparisons = results["seeds"], results["comparisons"]
    rows = []
    for method in ANSWER_METHODS:
        if method not in seeds:
            continue
        summary = seeds[method]
        if method == REFERENCE:
            versus = ["reference", "–", "–"]
        else:
            versus_lora = difference_with(comparisons, method)
            versus = (["not compared", "–", "–"] if versus_lora is None else
                      [signed(versus_lora["difference"]), "[{}, {}]".format(*map(signed, versus_lora["ci95"])),
                       verdict_cell(versus_lora)])
        rows.append([f"`{method}`", MODEL_TYPES.get(method, method), ", ".join(map(str, summary["seeds"])),
                     mean_std_cell(summary["roc_auc"]), *versus])
    return markdown_table(["Method", "What it is", "Seeds", "Test ROC-AUC", f"Δ = method − {REFERENCE}",
                           "95% CI", "Verdict"], rows)


def versus_phrase(method: str, other: str, result: dict) -> str:
    """One clause: which of two methods scores higher, or that no difference was detected."""
    low, high = result["ci95"]
    interval = f"{signed(result['difference'])}, 95% CI [{signed(low)}, {signed(high)}], Holm p {result['p_holm']:.3f}"
    if result["verdict"] == "no difference detected":
        return f"no difference detected between {method} and {other} ({method} − {other} {interval}: " \
               f"{interval_allows(result['ci95'])})"
    winner, loser = (method, other) if result["difference"] > 0 else (other, method)
    every_seed = all(d > 0 for d in result["per_seed"]) or all(d < 0 for d in result["per_seed"])
    return f"{winner} beats {loser} ({method} − {other} {interval}{', on every seed' if every_seed else ''})"


def verdict_clauses(comparisons: dict[str, dict]) -> list[str]:
    """The question's comparisons in words: each student against LoRA, then odd against even."""
    pairs = [(student, REFERENCE) for student in STUDENTS] + [STUDENTS]
    results = [(a, b, difference_with(comparisons, a, b)) for a, b in pairs]
    return [versus_phrase(a, b, result) for a, b, result in results if result is not None]


def verdict(results: dict) -> str:
    """The answer in words."""
    clauses = verdict_clauses(results["comparisons"])
    if not clauses:
        return ""
    return f"**Verdict**, on test ROC-AUC: {'; '.join(clauses)}."


def other_datasets_answer(results: dict) -> list[str]:
    """One paragraph per other dataset: the question's verdicts there, and whether they agree with the main one's."""
    paragraphs = []
    for name, other in (results.get("other_datasets") or {}).items():
        clauses = verdict_clauses(other["comparisons"])
        if not clauses:
            continue
        pairs = [(a, b) for a, b in [*((s, REFERENCE) for s in STUDENTS), STUDENTS]
                 if difference_with(other["comparisons"], a, b) and difference_with(results["comparisons"], a, b)]
        agree = [(a, b) for a, b in pairs if difference_with(other["comparisons"], a, b)["verdict"]
                 == difference_with(results["comparisons"], a, b)["verdict"]]
        counts = sorted(len(summary["seeds"]) for summary in other["seeds"].values())
        seeds = f"{counts[-1]} seeds" if counts[0] == counts[-1] else f"{counts[0]} to {counts[-1]} seeds a method"
        paragraphs.append(
            f"**On a second dataset**, {name} ({seeds}, the recipes tuned on {results['dataset']}; "
            f"[docs/datasets.md](docs/datasets.md)): {'; '.join(clauses)}. The verdict is the same as on "
            f"{results['dataset']} for {len(agree)} of these {len(pairs)} comparisons"
            + (f" (not for {', '.join(f'{a} − {b}' for a, b in pairs if (a, b) not in agree)})"
               if len(agree) < len(pairs) else "") + ".")
    return paragraphs


def strong_teacher_answer(results: dict) -> str | None:
    """What a stronger teacher changes: its own score against the e5 teacher's, and what its soft labels add to
    odd's start and to minilm, each against the same student without them (the strong family's rows)."""
    rows = {row["method"]: row for row in (results.get("ablations") or {}).get(STRONG, {}).get("rows", [])}
    clauses = []
    for method in STRONG_ROWS:
        row = rows.get(method)
        comparison = (row or {}).get("comparison")
        if not comparison or "skipped" in comparison:
            continue
        low, high = comparison["ci95"]
        clauses.append(f"{method} {mean_std_cell(row['roc_auc'])} ({len(row['seeds'])} seeds), {method} − "
                       f"{comparison['b']} {signed(comparison['difference'])} [{signed(low)}, {signed(high)}]: "
                       f"{verdict_words(comparison)}")
    if not clauses:
        return None
    return (f"**With a stronger teacher** (all-mpnet-base-v2 fine-tuned, which teaches through its soft labels alone; "
            f"exploratory, Holm-corrected with the ablations, [docs/ablations.md](docs/ablations.md)): "
            f"{'; '.join(clauses)}.")


def baseline_caveat(results: dict) -> str | None:
    """minilm against every student the study and its ablations trained (teachers aside): the bar to clear."""
    seeds = results["seeds"]
    if BASELINE not in seeds:
        return None
    score = seeds[BASELINE]["roc_auc"]["mean"]
    students = {m: s["roc_auc"]["mean"] for m, s in seeds.items() if m not in ("teacher", BASELINE, "tfidf")}
    ablated = {row["method"]: row["roc_auc"]["mean"] for family in (results.get("ablations") or {}).values()
               for row in family["rows"] if "teacher" not in row["method"] and row["method"] not in seeds}
    above = all(score > auc for auc in (students | ablated).values())
    return (f"`{BASELINE}`, a pretrained 6-layer English model fine-tuned directly (a baseline outside the question), "
            f"scores {mean_std_cell(seeds[BASELINE]['roc_auc'])}, "
            + ("higher than every student trained here" + (", the ablations' included." if ablated else ".") if above else
               "for comparison with the students above."))


def tuning_caveat(tuning: dict | None) -> str | None:
    """How the recipes were chosen (`make tune`, on validation, at a seed no evaluation uses), and which sit at an edge."""
    if tuning is None:
        return None
    at_edge = [f"{method} (at its {' and '.join(row['at_edge'])})" for method, row in tuning["chosen"].items()
               if not row["interior"]]
    return (f"Every method's learning rate and epochs were chosen by `make tune` on validation at seed "
            f"{tuning['seed']}, which no evaluation run uses, each grid grown until its best was inside it"
            + (f"; still at an edge when the search stopped: {', '.join(at_edge)}, so read those gaps as bounds"
               if at_edge else "") + " ([results/tuning.md](results/tuning.md)).")


def stale_recipes(results: dict, tuning: dict | None) -> str | None:
    """The methods whose scored runs were trained with another recipe than the one `make tune` now chooses."""
    chosen = (tuning or {}).get("chosen") or {}
    stale = []
    for record in results["runs"]:
        recipe, now = record.get("recipe") or {}, chosen.get(record["method"])
        if record["primary"] and now and "lr" in now and \
                (recipe.get("lr"), recipe.get("epochs")) != (now["lr"], now["epochs"]):
            stale.append(f"{record['method']} {recipe.get('lr'):g} × {recipe.get('epochs')} → "
                         f"{now['lr']:g} × {now['epochs']}")
    if not stale:
        return None
    return (f"These runs were trained with other recipes than those `make tune` now chooses "
            f"([results/tuning.md](results/tuning.md)): {', '.join(stale)} (learning rate × epochs); "
            f"`make study` trains them again with the new ones.")


def answer_markdown(results: dict, tuning: dict | None = None) -> str:
    """The README's answer section: the table, the verdict and its caveats."""
    stale = stale_recipes(results, tuning)  # then the tuning search says nothing of these runs
    caveats = [c for c in (baseline_caveat(results), stale or tuning_caveat(tuning)) if c]
    words = " ".join(part for part in (verdict(results), "**Caveats**: " + " ".join(caveats) if caveats else "")
                     if part)
    beyond_the_question = " ".join(part for part in [strong_teacher_answer(results), *other_datasets_answer(results)]
                                   if part)
    words = "\n\n".join(part for part in [words, beyond_the_question] if part)
    parts = [answer_table(results),
             "Mean ± std over the training seeds, on the held-out test split. Δ: the difference of the seed-averaged "
             "test ROC-AUCs, with a 95% interval that counts the seeds' noise (Student's t) and the test comments' "
             "(DeLong), for the question's three comparisons Holm-corrected as one family "
             "([docs/study.md](docs/study.md)); where the study compared lora − method, its sign is flipped.",
             words]
    return "\n\n".join(part for part in parts if part) + "\n"
