"""Finding run folders and reading their history: what counts as a run, and clear errors otherwise."""
import json

import pytest

from evaluate import EvaluationError, find_run_folders, read_run, read_runs
from report.runs import train_py_time_s

HISTORY = {"method": "odd", "args": {"dataset": "insults", "text_column": None, "label_column": None,
                                     "toxic_labels": None, "val_fraction": 0.1, "seed": 42, "split_seed": 42, "max_length": 128},
           "params": {"total": 10, "trainable": 10}, "steps": [], "epochs": [{"train_loss": 0.3}], "wall_time_s": 1.0}


def write_history(folder, **changes) -> None:
    folder.mkdir(parents=True)
    (folder / "history.json").write_text(json.dumps({**HISTORY, **changes}))


def test_runs_are_found_one_and_two_levels_down_but_not_in_hidden_folders(tmp_path):
    for name in ("even", "odd", "study/odd-seed1", ".checkpoints/odd", ".even.partial", "a/b/too-deep"):
        write_history(tmp_path / name)
    found = [p.relative_to(tmp_path).as_posix() for p in find_run_folders(tmp_path)]
    assert found == ["even", "odd", "study/odd-seed1"]


def test_the_first_run_of_a_method_is_its_primary_run(tmp_path):
    write_history(tmp_path / "study" / "odd-seed1", args={**HISTORY["args"], "seed": 1})
    write_history(tmp_path / "odd")
    write_history(tmp_path / "teacher", method="teacher")
    runs_by_dataset, skipped = read_runs(find_run_folders(tmp_path))
    assert skipped == [] and list(runs_by_dataset) == ["insults"]
    runs = runs_by_dataset["insults"]
    assert [(r.name, r.primary) for r in runs] == [("teacher", True), ("odd", True), ("odd-seed1", False)]


def test_missing_or_malformed_runs_raise_clear_errors(tmp_path):
    with pytest.raises(EvaluationError, match="no runs folder"):
        find_run_folders(tmp_path / "runs")
    with pytest.raises(EvaluationError, match="no run folders"):
        find_run_folders(tmp_path)
    write_history(tmp_path / "old", args={"dataset": "insults"})
    with pytest.raises(EvaluationError, match=r"lacks .*args\.split_seed.*args\.seed.*args\.max_length"):
        read_run(tmp_path / "old")
    write_history(tmp_path / "x" / "odd")
    write_history(tmp_path / "y" / "odd")
    with pytest.raises(EvaluationError, match="two runs are named 'odd'"):
        read_runs([tmp_path / "x" / "odd", tmp_path / "y" / "odd"])
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "history.json").write_text("{not json")
    with pytest.raises(EvaluationError, match=r"broken/history.json is unreadable \(JSONDecodeError: .*\); the run may be corrupt"):
        read_run(tmp_path / "broken")
    runs_by_dataset, skipped = read_runs([tmp_path / "odd-seed1-missing", tmp_path / "broken", tmp_path / "x" / "odd"])
    assert [run.name for run in runs_by_dataset["insults"]] == ["odd"]  # one unreadable run is listed, and the others go on
    assert [entry["reason"].split(":")[0] for entry in skipped] == [
        f"{tmp_path / 'odd-seed1-missing'} is not a run folder", f"{tmp_path / 'broken' / 'history.json'} is unreadable (JSONDecodeError"]


def test_training_loss_is_the_final_epochs_cross_entropy_and_the_objective_is_kept_apart():
    from report.runs import training_losses
    args = {"alpha_ce": 0.5, "alpha_kd": 0.5, "alpha_cos": 0.1}
    steps = [{"step": 1, "epoch": 1, "lr": 1.0, "loss": 0.9, "ce": 0.8, "kd": 0.4, "cos": 0.2},
             {"step": 2, "epoch": 2, "lr": 1.0, "loss": 0.5, "ce": 0.4, "kd": 0.2, "cos": 0.1},
             {"step": 3, "epoch": 2, "lr": 1.0, "loss": 0.3, "ce": 0.2, "kd": 0.2, "cos": 0.1}]
    recorded = {"args": args, "steps": steps, "epochs": [{"epoch": 1, "train_loss": 0.9},
                                                         {"epoch": 2, "train_loss": 0.4,
                                                          "train_terms": {"loss": 0.4, "ce": 0.31, "kd": 0.2}}]}
    assert training_losses(recorded) == {"train_ce": 0.31, "train_objective": 0.4,
                                         "objective": "0.5·CE + 0.5·KD + 0.1·cos"}
    plain = {"args": args, "steps": [{"step": 1, "epoch": 1, "lr": 1.0, "loss": 0.7, "ce": 0.7}],
             "epochs": [{"epoch": 1, "train_loss": 0.7, "train_terms": {"loss": 0.7, "ce": 0.7}}]}
    assert training_losses(plain) == {"train_ce": 0.7, "train_objective": 0.7, "objective": "CE"}


def test_tuning_runs_are_never_evaluated(tmp_path):
    for name in ("odd", "study/odd-seed1", "tune/odd-lr5e-05-ep3"):
        (tmp_path / name).mkdir(parents=True)
        (tmp_path / name / "history.json").write_text("{}")
    assert [p.relative_to(tmp_path).as_posix() for p in find_run_folders(tmp_path)] == ["odd", "study/odd-seed1"]


def test_a_resumed_runs_time_counts_the_epochs_before_the_resume():
    assert train_py_time_s({"total_time_s": 100.0, "wall_time_s": 90.0}) == 100.0
    assert train_py_time_s({"total_time_s": 100.0, "wall_time_s": 400.0, "resumed_after_epochs": [2]}) == 400.0
    assert train_py_time_s({"wall_time_s": 90.0}) is None  # no train.py time recorded: none is made up
