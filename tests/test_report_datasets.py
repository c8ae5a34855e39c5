"""A second dataset in the report: its runs evaluated apart, the cross-dataset table, the peer row, the words."""
import json
import shutil

import numpy as np
import pytest

import evaluate
import report.__main__ as full_report
from data.splits import Splits
from evaluate import EvaluationError
from report.readme import markers
from test_evaluate import project, tiny_split, write_run  # noqa: F401 (project: a fixture)
from training.metrics import binary_metrics
from webapp.app import Predictor

SECOND = "tiny2"
SECOND_RUNS = [("odd", 42), ("odd", 1), ("lora", 42), ("lora", 1)]
PEER = {"package": "alt-profanity-check==1.9.1", "dataset": "tiny", "split": "test", "roc_auc": 0.8125,
        "at_0.5": {"f1": 0.625}, "not_on_toxic_comments": "It was trained on all of that collection."}


def splits_of(name: str) -> Splits:
    """Each dataset its own comments: tiny2's come from other seeds than tiny's."""
    offset = 10 if name == SECOND else 0
    return Splits(tiny_split(40, offset), tiny_split(30, offset + 1), tiny_split(45, offset + 2), source=f"fake {name}")


@pytest.fixture
def two_datasets(project, monkeypatch):
    """The report test's project, plus four runs trained on a second dataset in runs/tiny2/."""
    for i, (method, seed) in enumerate(SECOND_RUNS):
        folder = project / "runs" / SECOND / f"{method}-seed{seed}"
        folder.mkdir(parents=True)
        write_run(folder, method, seed, model_seed=20 + i, dataset=SECOND)
    monkeypatch.setattr(evaluate, "load_splits", lambda name, **kwargs: splits_of(name))
    start, end = markers("datasets")
    (project / "docs" / "datasets.md").write_text(f"# Datasets\n\n{start}\nold\n{end}\n")
    return project


def scores_on(folder, split, threshold: float) -> dict:
    probs = Predictor.from_folder(folder).probabilities(split.texts)
    return binary_metrics(split.labels, probs, threshold)


def test_each_dataset_is_evaluated_apart_and_the_models_are_scored_across(two_datasets):
    results = full_report.main(["--no-speed", "--threads", "1"])

    assert results["dataset"] == "tiny", "the dataset with the most runs is the main one"
    assert all(record["path"].count(SECOND) == 0 for record in results["runs"])
    second = results["other_datasets"][SECOND]
    assert sorted(record["path"] for record in second["runs"]) == [
        "runs/tiny2/lora-seed1", "runs/tiny2/lora-seed42", "runs/tiny2/odd-seed1", "runs/tiny2/odd-seed42"]
    assert list(second["seeds"]) == ["odd", "lora"] and second["seeds"]["odd"]["seeds"] == [1, 42]
    assert second["comparisons"]["lora_vs_odd"]["seeds"] == [1, 42]
    assert second["comparisons"]["lora_vs_odd"]["family"] == "primary"
    assert "skipped" in second["comparisons"]["odd_vs_even"]

    cross = results["cross_dataset"]["table"]
    assert set(cross) == {"odd", "lora"} and set(cross["odd"]) == {"tiny", SECOND}
    # The diagonal is each dataset's own test score; off it, each run keeps its own validation threshold.
    assert cross["odd"]["tiny"]["tiny"]["roc_auc"]["mean"] == pytest.approx(results["seeds"]["odd"]["roc_auc"]["mean"])
    assert cross["lora"][SECOND][SECOND]["f1"]["mean"] == pytest.approx(second["seeds"]["lora"]["f1"]["mean"])
    moved = [scores_on(two_datasets / "runs" / SECOND / f"odd-seed{seed}", splits_of("tiny").test,
                       next(r["validation_threshold"] for r in second["runs"] if r["name"] == f"odd-seed{seed}"))
             for seed in (42, 1)]
    assert cross["odd"][SECOND]["tiny"]["roc_auc"]["mean"] == pytest.approx(np.mean([m["roc_auc"] for m in moved]))
    assert cross["odd"][SECOND]["tiny"]["f1"]["mean"] == pytest.approx(np.mean([m["f1"] for m in moved]))
    assert cross["odd"][SECOND]["tiny"]["roc_auc"]["mean"] != pytest.approx(second["seeds"]["odd"]["roc_auc"]["mean"])
    assert results["cross_dataset"]["max_length"] == 32 and set(results["cross_dataset"]["truncated"]) == {"tiny", SECOND}

    assert any(line.startswith(f"- Wall time of the 4 runs on {SECOND}:") for line in
               (two_datasets / "docs" / "study.md").read_text().splitlines()), "the time is a finding too"
    section = (two_datasets / "docs" / "datasets.md").read_text()
    assert f"## A second dataset: {SECOND}" in section and "| `odd` | tiny | 1, 42 |" in section
    assert "lora − odd" in section and "old\n" not in section
    readme = (two_datasets / "README.md").read_text()
    assert f"**On a second dataset**, {SECOND} (2 seeds," in readme
    assert "for 1 of these 1 comparisons" in readme or "for 0 of these 1 comparisons" in readme


def test_the_study_dataset_stays_the_main_one_when_a_second_has_more_runs():
    assert full_report.main_dataset({"insults": ["odd"], "toxic-comments": ["odd", "lora"]}) == "insults"
    assert full_report.main_dataset({"mine": ["odd"], "toxic-comments": ["odd", "lora"]}) == "toxic-comments"
    assert full_report.main_dataset({}) is None


def test_the_peer_row_comes_from_make_peer_and_a_malformed_file_is_left_out(two_datasets, capsys):
    (two_datasets / "results").mkdir()
    (two_datasets / "results" / "peer.json").write_text(json.dumps(PEER))
    full_report.main(["--no-speed", "--no-readme", "--threads", "1"])
    row = next(line for line in (two_datasets / "results" / "results.md").read_text().splitlines()
               if line.startswith("| `alt-profanity-check"))
    assert "| 0.812 | 0.625 | – | – |" in row

    (two_datasets / "results" / "peer.json").write_text(json.dumps({**PEER, "roc_auc": None} | {"at_0.5": 3}))
    full_report.main(["--no-speed", "--no-readme", "--threads", "1"])
    assert "is not what make peer writes" in capsys.readouterr().err
    assert "alt-profanity-check" not in (two_datasets / "results" / "results.md").read_text()


def test_evaluate_scores_one_dataset_and_says_how_to_choose(two_datasets):
    with pytest.raises(EvaluationError, match=r"different datasets \(tiny: 6, tiny2: 4\); --dataset chooses one"):
        evaluate.main(["--threads", "1"])
    scored = evaluate.main(["--dataset", SECOND, "--out", "results/tiny2", "--threads", "1"])
    assert sorted(record["name"] for record in scored["runs"]) == ["lora-seed1", "lora-seed42", "odd-seed1", "odd-seed42"]
    with pytest.raises(EvaluationError, match="no run was trained on other"):
        evaluate.main(["--dataset", "other", "--threads", "1"])


def test_other_datasets_only_keeps_the_main_answer_and_scores_the_main_runs_on_disk(two_datasets):
    with pytest.raises(EvaluationError, match="which a full report writes first"):
        full_report.main(["--other-datasets-only", "--no-speed", "--threads", "1"])
    first = full_report.main(["--no-speed", "--no-readme", "--threads", "1"])
    for folder in ("runs/study/odd-seed1", "runs/even", f"runs/{SECOND}/odd-seed1"):
        shutil.rmtree(two_datasets / folder)  # the main study's runs are gone; the second dataset lost one

    updated = full_report.main(["--other-datasets-only", "--no-speed", "--threads", "1"])

    stored = json.loads((two_datasets / "results" / "results.json").read_text())
    assert stored == json.loads(json.dumps(updated))
    for key in ("runs", "seeds", "comparisons", "generated_by", "best_student"):
        assert stored[key] == json.loads(json.dumps(first[key])), f"the main answer's {key} is kept"
    assert stored["other_datasets"][SECOND]["seeds"]["odd"]["seeds"] == [42], "the other datasets are scored afresh"
    assert stored["cross_dataset"]["table"]["odd"]["tiny"]["tiny"]["seeds"] == [42], "the main runs on disk"
    assert stored["cross_dataset"]["table"]["odd"][SECOND]["tiny"]["seeds"] == [42]
    assert stored["other_datasets_generated_by"] == "python -m report --other-datasets-only --no-speed --threads 1"
    assert f"**On a second dataset**, {SECOND} (1 to 2 seeds a method," in (two_datasets / "README.md").read_text()
