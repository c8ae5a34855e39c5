"""The ablations in the report, on fabricated run folders: tables, the ensemble teacher, the best student,
the trade-off figure, and a report that still works before any ablation was run."""
import json
import shutil

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

import report.__main__ as full_report
from report.ablations import (ENSEMBLE_TEACHER, averaged_logits_probability, best_student, family_rows,
                              trade_off_points)
from report.findings import ablations_time, best_student_line
from evaluate import RunPredictions
from test_evaluate import load_calls, section, tiny_split, write_documents, write_run  # noqa: F401 - the report tests' fakes

RUNS = [("teacher", "teacher", 42), ("study/teacher-seed1", "teacher", 1), ("odd", "odd", 42),
        ("study/odd-seed1", "odd", 1), ("lora", "lora", 42), ("minilm", "minilm", 42),
        ("study/minilm-seed1", "minilm", 1),
        ("ablations/layers-bottom", "odd", 42), ("ablations/lora-r2", "lora", 42),
        ("ablations/transfer-odd", "odd", 42), ("ablations/transfer-odd-seed1", "odd", 1),
        ("ablations/ensemble-odd", "odd", 42), ("ablations/ensemble-odd-seed1", "odd", 1)]


@pytest.fixture
def project(tmp_path, monkeypatch):
    for i, (name, method, seed) in enumerate(RUNS):
        (tmp_path / "runs" / name).mkdir(parents=True)
        write_run(tmp_path / "runs" / name, method, seed, model_seed=i)
    (tmp_path / "runs" / "ablations" / "sessions.json").write_text(json.dumps(
        [{"seeds": "default", "trained": 6, "skipped": 7, "failed": 0, "wall_time_s": 1500.0}]))
    write_documents(tmp_path)
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    torch.set_num_threads(1)


def test_ablation_runs_get_their_own_tables_compared_seed_by_seed(project, load_calls):
    results = full_report.main(["--no-speed", "--threads", "1"])
    assert {r["method"] for r in results["runs"]} == {"teacher", "odd", "lora", "minilm"}, "main tables: no ablation"
    assert {r["name"]: r["method"] for r in results["ablation_runs"]} == {
        "layers-bottom": "layers-bottom", "lora-r2": "lora-r2", "transfer-odd": "transfer-odd",
        "transfer-odd-seed1": "transfer-odd", "ensemble-odd": "ensemble-odd", "ensemble-odd-seed1": "ensemble-odd"}
    assert all(r["behaviour"] is None and r["speed"] is None for r in results["ablation_runs"])

    families = results["ablations"]
    assert list(families) == ["layers", "lora", "transfer", "teacher"]
    layers = {row["method"]: row for row in families["layers"]["rows"]}
    assert list(layers) == ["odd", "layers-bottom"], "points without runs (even, top, ...) are left out"
    assert layers["odd"]["comparison"] is None and layers["odd"]["seeds"] == [1, 42]
    bottom = layers["layers-bottom"]
    assert bottom["seeds"] == [42] and bottom["comparison"]["seeds"] == [42] and bottom["against"] == "odd"
    by_name = {r["name"]: r for r in results["ablation_runs"] + results["runs"]}
    assert bottom["comparison"]["difference"] == pytest.approx(
        by_name["layers-bottom"]["test"]["at_validation_threshold"]["roc_auc"]
        - by_name["odd"]["test"]["at_validation_threshold"]["roc_auc"])
    transfer = families["transfer"]["rows"][1]
    assert transfer["method"] == "transfer-odd" and transfer["comparison"]["seeds"] == [1, 42]
    assert transfer["roc_auc"]["n"] == 2 and transfer["minutes"] == pytest.approx(
        np.mean([by_name[n]["command_wall_time_s"] for n in ("transfer-odd", "transfer-odd-seed1")]) / 60)

    # The teacher signal: the ensemble of the two teachers, rebuilt from their probabilities, against one teacher.
    teacher_rows = {row["method"]: row for row in families["teacher"]["rows"]}
    assert list(teacher_rows) == ["odd", "ensemble-odd", "teacher", ENSEMBLE_TEACHER]
    cached = [json.loads((project / "runs" / folder / ".scores" / f"{name}.json").read_text())
              for folder, name in (("", "teacher"), ("study", "teacher-seed1"))]
    labels = tiny_split(45, 2).labels  # the fake test split of load_calls
    test_probs = [next(np.asarray(p) for p in c["probabilities"].values() if len(p) == len(labels)) for c in cached]
    expected = roc_auc_score(labels, averaged_logits_probability(test_probs))
    assert results["ensemble_teacher"]["test"]["at_validation_threshold"]["roc_auc"] == pytest.approx(expected)
    assert results["ensemble_teacher"]["members"] == ["teacher", "teacher-seed1"]
    assert teacher_rows[ENSEMBLE_TEACHER]["comparison"]["seeds"] == [1, 42], "paired with every teacher seed"
    assert teacher_rows["teacher"]["comparison"] is None, "the teachers are the ensemble's reference, not odd"

    # The best student is chosen on validation among those with the most seeds, and compared with minilm.
    best = results["best_student"]
    candidates = {"odd", "transfer-odd", "ensemble-odd"}  # the 2-seed students
    assert best["method"] in candidates and best["against_minilm"]["seeds"] == [1, 42]
    validation = {m: np.mean([r["validation"]["roc_auc"] for r in by_name.values() if r["method"] == m])
                  for m in candidates}
    assert best["method"] == max(validation, key=validation.get)

    # The trade-off: every main method, and the best of each family that has its own runs.
    points = {p["label"]: p for p in results["trade_off"]}
    assert {"teacher", "odd", "lora", "minilm"} <= set(points)
    assert {"layers-bottom (best of layers)", "lora-r2 (best of lora)"} <= set(points)
    for point in points.values():
        assert point["ci95"][0] <= point["roc_auc"] <= point["ci95"][1]
    assert points["minilm"]["kind"] == "baseline" and points["lora-r2 (best of lora)"]["kind"] == "ablation"

    ablation_tables = section(project / "docs" / "ablations.md", "ablations")
    assert "## Ablations" in ablation_tables and "| Point | Seeds | Test ROC-AUC |" in ablation_tables
    assert "bottom {1,2,3,4,5,6} (`layers-bottom`) | 42 (single seed) |" in ablation_tables
    assert "vs odd: " in ablation_tables and "reference" in ablation_tables
    assert "(`teacher-ensemble`) | one ensemble of seeds 1, 42 |" in ablation_tables
    study = section(project / "docs" / "study.md", "study")
    assert "Wall time of `make ablations`: its 6 runs in runs/ablations/" in study
    assert "25.0 minutes of wall time for the 6 runs it trained, in 1 session(s)" in study
    assert "Best 6-layer student, chosen by mean validation ROC-AUC" in study
    assert "The goal set for the best student, a test ROC-AUC of at least 0.945, the mean over at least 5 seeds" in study
    assert "The teachers' ensemble (the logits of `teacher`, `teacher-seed1` averaged" in study
    for figure in ("trade_off.png", "test_roc_auc.png"):
        assert f"(../results/{figure})" in study
        assert (project / "results" / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (project / "results" / "test_metrics.png").exists(), "the bar chart from 0 is gone"


def test_before_any_ablation_the_report_says_how_to_make_them(project, load_calls):
    for name, _, _ in RUNS:
        if name.startswith("ablations/") or name == "study/teacher-seed1":
            for file in (project / "runs" / name).iterdir():
                file.unlink()
            (project / "runs" / name).rmdir()
    results = full_report.main(["--no-speed", "--threads", "1", "--no-readme"])
    assert results["ablations"] == {} and results["ensemble_teacher"] is None and results["ablation_runs"] == []
    report = (project / "results" / "results.md").read_text()
    assert "No ablation run has been evaluated yet: `make ablations` trains them" in report
    assert "Wall time of `make ablations`" in report, "the runner's sessions are still on disk"
    assert "(best of" not in json.dumps(results["trade_off"])


def test_averaging_the_log_odds_is_averaging_the_two_logits():
    torch.manual_seed(0)
    logits = [torch.randn(50, 2) for _ in range(3)]
    probabilities = [torch.softmax(z, dim=-1)[:, 1].double().numpy() for z in logits]
    expected = torch.softmax(torch.stack(logits).mean(dim=0), dim=-1)[:, 1].double().numpy()
    np.testing.assert_allclose(averaged_logits_probability(probabilities), expected, atol=1e-6)
    assert np.isfinite(averaged_logits_probability([np.array([0.0, 1.0]), np.array([1.0, 1.0])])).all()


def test_the_teacher_family_lists_the_ensemble_after_the_teachers_it_averages():
    rows = family_rows("teacher")
    names = [name for name, _, _ in rows]
    assert names.index(ENSEMBLE_TEACHER) == names.index("teacher") + 1
    assert dict((name, against) for name, _, against in rows)[ENSEMBLE_TEACHER] == "teacher"
    assert dict((name, against) for name, _, against in rows)["prefix-teacher"] == "teacher"
    assert dict((name, against) for name, _, against in rows)["ensemble-odd"] == "odd"


def single_record(name, method, seed, validation_auc, test_auc=0.9):
    test = {"roc_auc": test_auc, "pr_auc": 0.8, "macro_f1": 0.8}
    return {"name": name, "method": method, "seed": seed, "validation": {"roc_auc": validation_auc},
            "test": {"at_validation_threshold": test}, "params": {"trainable": 10, "total": 10},
            "command_wall_time_s": 60.0}


def test_the_best_student_is_chosen_on_validation_never_on_test_and_never_a_teacher():
    grouped = {"odd": {42: single_record("odd", "odd", 42, 0.95, test_auc=0.99),
                       1: single_record("odd-seed1", "odd", 1, 0.95, test_auc=0.99)},
               "transfer-odd": {42: single_record("t", "transfer-odd", 42, 0.97, test_auc=0.90),
                                1: single_record("t1", "transfer-odd", 1, 0.96, test_auc=0.90)},
               "layers-top": {42: single_record("top", "layers-top", 42, 0.99)},  # fewer seeds
               "teacher": {42: single_record("teacher", "teacher", 42, 0.999),
                           1: single_record("teacher-seed1", "teacher", 1, 0.999)},
               "minilm": {42: single_record("m", "minilm", 42, 0.999), 1: single_record("m1", "minilm", 1, 0.999)}}
    assert best_student(grouped) == "transfer-odd"


def best(auc, low, high, std=0.002):
    return {"method": "transfer-odd", "seeds": [1, 2, 42], "roc_auc": {"mean": auc, "std": std, "n": 3},
            "goal_roc_auc": 0.94, "against_minilm": {
                "difference": auc - 0.94, "ci95": [low, high], "p_holm": 0.01 if low > 0 else 0.3,
                "family": "exploratory", "family_size": 1,
                "verdict": "transfer-odd better" if low > 0 else "no difference detected"}}


def test_the_goal_is_met_only_with_both_the_level_and_an_interval_above_zero_against_minilm():
    assert "**met**" in best_student_line(best(0.945, 0.001, 0.009))
    short = best_student_line(best(0.932, -0.012, -0.004))
    assert "**not met** (short of 0.940 by 0.008)" in short and "test ROC-AUC 0.932 ± 0.002" in short
    undecided = best_student_line(best(0.941, -0.002, 0.004))
    assert "**not met** (no win over minilm detected)" in undecided
    too_few = best_student_line({**best(0.95, 0.001, 0.009), "goal_seeds": 5})
    assert "the mean over at least 5 seeds" in too_few and "**not met** (3 seeds so far)" in too_few
    assert best_student_line(None) is None


def test_the_ablations_wall_time_comes_from_their_runs_and_the_runners_sessions():
    records = [{"command_wall_time_s": 180.0}, {"command_wall_time_s": 300.0}]
    sentence = ablations_time(records, [{"trained": 2, "wall_time_s": 540.0}])
    assert sentence == ("Wall time of `make ablations`: its 2 runs in runs/ablations/ took 8.0 minutes of `train.py` "
                        "in all, 3.0 to 5.0 each (the runs of `make all` and `make study` it reuses not counted); "
                        "measured by the runner, start-up of every `train.py` included: 9.0 minutes of wall time for "
                        "the 2 runs it trained, in 1 session(s).")
    assert ablations_time([], []) is None
    strong_family_run = {"method": "strong-odd", "ablation": True, "command_wall_time_s": 400.0}
    assert ablations_time([strong_family_run], []) is None  # make strong-teacher's, in its own line


def test_trade_off_points_skip_a_method_scored_on_another_test_set():
    labels = np.array([0, 1, 0, 1, 1, 0])
    records = [single_record("odd", "odd", 42, 0.9), single_record("lora", "lora", 42, 0.9)]
    predictions = {"odd": RunPredictions(labels, np.linspace(0, 1, 6), "a"),
                   "lora": RunPredictions(labels, np.linspace(1, 0, 6), "a")}
    assert [p["method"] for p in trade_off_points(records, predictions, {})] == ["odd", "lora"]


STRONG_RUNS = [("study/teacher-strong", "teacher-strong", 42), ("study/teacher-strong-seed1", "teacher-strong", 1),
               ("study/minilm-kd", "minilm-kd", 42), ("study/minilm-kd-seed1", "minilm-kd", 1),
               ("ablations/strong-odd", "odd", 42)]


def test_one_family_joins_a_finished_report_without_rescoring_the_rest(project, load_calls):
    with pytest.raises(full_report.EvaluationError, match="which a full report writes first"):
        full_report.main(["--family", "strong", "--no-speed", "--threads", "1"])
    first = json.loads(json.dumps(full_report.main(["--no-speed", "--no-readme", "--threads", "1"])))
    with pytest.raises(full_report.EvaluationError, match="no run of the strong family's own points"):
        full_report.main(["--family", "strong", "--no-speed", "--threads", "1"])
    for i, (name, method, seed) in enumerate(STRONG_RUNS):
        (project / "runs" / name).mkdir(parents=True)
        write_run(project / "runs" / name, method, seed, model_seed=50 + i)
    for name in ("odd", "study/odd-seed1", "ablations/layers-bottom"):
        shutil.rmtree(project / "runs" / name)  # runs of the report that are gone from disk now

    full_report.main(["--family", "strong", "--no-speed", "--threads", "1"])

    stored = json.loads((project / "results" / "results.json").read_text())
    for key in ("runs", "seeds", "comparisons", "generated_by", "ensemble_teacher"):
        assert stored[key] == first[key], f"the report's {key} is kept"
    assert stored["ablations"]["layers"] == {**first["ablations"]["layers"], "rows": stored["ablations"]["layers"]["rows"]}
    rows = {row["method"]: row for row in stored["ablations"]["strong"]["rows"]}
    assert set(rows) == {"minilm", "minilm-kd", "strong-odd", "teacher-strong", "lora"}
    assert rows["minilm-kd"]["comparison"]["seeds"] == [1, 42] and rows["minilm-kd"]["against"] == "minilm"
    assert rows["teacher-strong"]["comparison"]["b"] == "teacher"
    assert rows["minilm"]["comparison"] is None and rows["lora"]["comparison"] is None, "references, as odd-ce"
    assert rows["minilm-kd"]["run_minutes"] == [pytest.approx((120 + 6 * 53) / 60), pytest.approx((120 + 6 * 52) / 60)]
    comparisons = [row["comparison"] for family in stored["ablations"].values() for row in family["rows"]
                   if row["comparison"] and "skipped" not in row["comparison"]]
    assert {c["family_size"] for c in comparisons} == {len(comparisons)}, "Holm over every ablation comparison"
    assert {r["name"] for r in stored["ablation_runs"]} >= {"strong-odd", "teacher-strong-seed1", "minilm-kd"}
    old, best = first["best_student"], stored["best_student"]
    assert best["goal_seeds"] == 5 and best["goal_roc_auc"] == 0.945
    assert best["method"] in (old["method"], "minilm-kd", "strong-odd")
    assert (len(best["seeds"]), best["validation_roc_auc"]) >= (len(old["seeds"]), old["validation_roc_auc"])
    drawn = [point["method"] for point in stored["trade_off"]]
    assert {"teacher-strong", "minilm-kd", "strong-odd"} <= set(drawn) and len(drawn) == len(set(drawn))
    assert [p for p in stored["trade_off"] if p["method"] == "teacher"] == \
        [p for p in first["trade_off"] if p["method"] == "teacher"]
    assert stored["families_generated_by"] == {"strong": "python -m report --family strong --no-speed --threads 1"}
    readme = (project / "README.md").read_text()
    assert "**With a stronger teacher**" in readme and "minilm-kd − minilm" in readme
    assert "teacher-strong − teacher" in readme
    study = section(project / "docs" / "study.md", "study")
    assert "Wall time of the strong family's runs, in minutes of `train.py` per run, seed by seed: " in study
    assert "The goal set for the best student, a test ROC-AUC of at least 0.945" in study
