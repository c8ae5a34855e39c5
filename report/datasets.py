"""The question on a second dataset, and how the models travel between the two datasets.

``python -m report`` evaluates each dataset's runs apart (``evaluate.read_runs`` groups them by dataset),
since a paired comparison needs the same test comments: each dataset gets its own seed summary and its
own primary family. Then every run of CROSS_METHODS is scored on the other dataset's test split too.
It keeps the decision threshold it chose on its own validation split, as a deployed model would: the
ROC-AUC says how well it still ranks the other comments, F1 at that threshold what its decisions are
worth there. A label means different things in the two datasets (DATASET_LABELS), so a model that
moves is judged by a definition it never saw; that is the practitioner's situation, and the table
says how much it costs.
"""
import json
import sys
from pathlib import Path

import numpy as np

from evaluate import mean_std, runs_by_method
from report.behaviour_cases import CAPABILITIES
from report.findings import runs_time
from report.tables import comparisons_table, markdown_table, mean_std_cell, number, seeds_table
from training.metrics import binary_metrics

CROSS_METHODS = ("odd", "lora", "minilm", "tfidf")
PEER_FILE = "peer.json"  # make peer: an off-the-shelf filter scored on the main test split (baselines/alt_profanity_check.py)
PEER_KEYS = ("package", "dataset", "roc_auc", "at_0.5", "not_on_toxic_comments")
DATASET_LABELS = {
    "insults": "1 = an insult aimed at a participant of the conversation (Kaggle 2012, news-site comments)",
    "toxic-comments": "1 = offensive: toxic, obscene, threatening, insulting or hateful, whoever it is aimed at "
                      "(Jigsaw 2018 Wikipedia talk-page comments and Davidson et al. 2017 tweets)",
}


def cross_dataset(records_by_dataset: dict[str, list[dict]], runs_by_dataset: dict[str, dict], tests: dict,
                  load) -> dict:
    """method -> trained on -> scored on -> seed means of ROC-AUC and F1 at the run's own validation threshold.

    ``runs_by_dataset[dataset][name]`` is the run (``evaluate.Run``) of a record, ``tests[dataset]`` the
    dataset's test split, ``load(folder, history)`` a scorer (``report.scores.CachedScorer``: a run scored
    once on a test split is never scored again).
    """
    table = {}
    for method in CROSS_METHODS:
        for trained_on, records in records_by_dataset.items():
            by_seed = runs_by_method(records).get(method)
            if not by_seed:
                continue
            for scored_on, test in tests.items():
                scores = []
                for record in by_seed.values():
                    run = runs_by_dataset[trained_on][record["name"]]
                    probs = load(run.path, run.history).predict(test.texts)
                    scores.append(binary_metrics(test.labels, probs, record["validation_threshold"]))
                table.setdefault(method, {}).setdefault(trained_on, {})[scored_on] = {
                    "seeds": sorted(by_seed), "roc_auc": mean_std([s["roc_auc"] for s in scores]),
                    "f1": mean_std([s["f1"] for s in scores]),
                    "threshold": mean_std([record["validation_threshold"] for record in by_seed.values()])}
    return table


def possessive(name: str) -> str:
    """``insults'``, ``tiny's``: a dataset's name as an owner."""
    return f"{name}'" if name.endswith("s") else f"{name}'s"


def truncated_share(tokenizer, texts: list[str], max_length: int) -> float:
    """The share of ``texts`` longer than ``max_length`` tokens: the models read only their beginning."""
    lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=True, verbose=False)["input_ids"]]
    return sum(length > max_length for length in lengths) / len(lengths)


def read_peer(path: Path) -> dict | None:
    """The off-the-shelf filter's scores written by ``make peer``, or None (said once) when absent or malformed."""
    if not Path(path).is_file():
        return None
    try:
        peer = json.loads(Path(path).read_text(encoding="utf-8"))
        if all(key in peer for key in PEER_KEYS) and "f1" in peer["at_0.5"]:
            return peer
    except (ValueError, TypeError):
        pass
    print(f"python -m report: {path} is not what make peer writes; its row is left out", file=sys.stderr)
    return None


def cross_dataset_table(cross: dict, datasets: list[str], peer: dict | None = None) -> str:
    """Rows: each method as trained on each dataset (and the peer); columns: ROC-AUC and F1 on each test split."""
    rows = []
    for method, trained in cross.items():
        for trained_on in datasets:
            if trained_on in trained:
                cells = trained[trained_on]
                rows.append([f"`{method}`", trained_on, ", ".join(map(str, cells[datasets[0]]["seeds"])),
                             *(cell for scored_on in datasets for cell in
                               (mean_std_cell(cells[scored_on]["roc_auc"]), mean_std_cell(cells[scored_on]["f1"])))])
    if peer:
        rows.append([f"`{peer['package']}`", "all of toxic-comments' collection (off the shelf)", "–",
                     *(cell for scored_on in datasets for cell in
                       ((number(peer["roc_auc"]), number(peer["at_0.5"]["f1"])) if scored_on == peer["dataset"]
                        else ("–", "–")))])
    header = ["Model", "Trained on", "Seeds",
              *(title for scored_on in datasets for title in (f"{scored_on} test: ROC-AUC", "F1"))]
    return markdown_table(header, rows)


def capability_means(records: list[dict]) -> dict[str, dict[str, float]]:
    """method -> capability -> the mean pass rate over its seeds (each run at its own validation threshold)."""
    return {method: {capability: float(np.mean([r["behaviour"]["pass_rates"][capability]["rate"]
                                                for r in by_seed.values()])) for capability in CAPABILITIES}
            for method, by_seed in runs_by_method(records).items()
            if all(r.get("behaviour") for r in by_seed.values())}


def capabilities_side_by_side(records_by_dataset: dict[str, list[dict]]) -> str:
    """The behavioural suite's mean pass rates, one row per method and dataset it was trained on."""
    means = {dataset: capability_means(records) for dataset, records in records_by_dataset.items()}
    methods = [method for method in runs_by_method([r for records in records_by_dataset.values() for r in records])
               if sum(method in table for table in means.values()) > 1]
    rows = [[f"`{method}`", dataset, *(f"{100 * table[method][c]:.0f}%" for c in CAPABILITIES)]
            for method in methods for dataset, table in means.items() if method in table]
    return markdown_table(["Method", "Trained on", *CAPABILITIES], rows)


def other_dataset_markdown(results: dict, heading: str) -> list[str]:
    """Each other dataset's seed table and comparisons, the cross-dataset table and the suite side by side."""
    others = results.get("other_datasets") or {}
    if not others:
        return []
    main = results["dataset"]
    parts = []
    for name, other in others.items():
        compared = {key: c for key, c in other["comparisons"].items() if "skipped" not in c}
        parts += [f"{heading} A second dataset: {name}",
                  f"What a label means: in {main}, {DATASET_LABELS.get(main, 'as the data give it')}; in {name}, "
                  f"{DATASET_LABELS.get(name, 'as the data give it')}. Every run here trained on "
                  f"{possessive(name)} own train split and chose its epoch and threshold on its validation split, "
                  f"with the recipes tuned on {main} (`make second-dataset`, `experiments/study.py --dataset`).",
                  seeds_table(other["seeds"]),
                  f"Paired comparisons on {possessive(name)} test split, with the intervals and Holm families of the "
                  f"main study:",
                  comparisons_table(compared)]
        parts.append(runs_time(name, other["runs"], other.get("sessions", ())))
    cross = results.get("cross_dataset")
    if cross:
        datasets = [main, *others]
        peer = cross.get("peer")
        truncated = cross.get("truncated") or {}
        parts += [f"{heading} How the models travel between the datasets",
                  ("Test comments longer than the models' " + f"{cross['max_length']} tokens, which they read only in "
                   "part (the teacher's tokenizer): " + ", ".join(f"{name} {100 * share:.1f}%"
                                                                  for name, share in truncated.items()) + ".")
                  if truncated else "",
                  cross_dataset_table(cross["table"], datasets, peer),
                  "Each model keeps the threshold it chose on its own training dataset's validation split, as a "
                  "deployed model would; F1 is at that threshold, ROC-AUC needs none. Seed means ± std. "
                  + (f"`{peer['package']}` is scored with its own `predict_prob` at 0.5 (`make peer`). "
                     f"{peer['not_on_toxic_comments']}" if peer else ""),
                  f"{heading} The behavioural suite on both datasets' models",
                  "Mean pass rate over the seeds, each run at its own validation threshold. The suite's labels "
                  f"follow {possessive(main)} definition (an insult aimed at a participant), so a model trained to "
                  "flag any offensive text fails the cases of profanity aimed at nobody by design.",
                  capabilities_side_by_side({main: results["runs"],
                                             **{name: other["runs"] for name, other in others.items()}})]
    return [part for part in parts if part]
