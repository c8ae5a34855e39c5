"""make ablations: each point builds the model it names, and the plan reuses the runs make all and make study make.

No training here: models are built on tiny random BERTs, plans are only planned, and the runner's
subprocess is never started.
"""
import argparse
import json
import math
from pathlib import Path

import pytest
import torch
import train
from conftest import fake_train_processes, save_teacher_and_base
from experiments.ablations import (ENSEMBLE_SEEDS, FAMILIES, ON_REQUEST, POINTS, ablation_plan, estimate_minutes,
                                   fitted_seeds, main, parse_seeds, recorded_minutes)
from experiments.runner import PlannedRun, is_done, planned_args
from experiments.study import study_plan
from lora.lora import LoRALinear
from test_experiments import write_history

EXPECTED_LAYERS = {"odd": [1, 3, 5, 7, 9, 11], "even": [2, 4, 6, 8, 10, 12], "layers-bottom": [1, 2, 3, 4, 5, 6],
                   "layers-top": [7, 8, 9, 10, 11, 12], "layers-distilbert": [1, 3, 5, 8, 10, 12],
                   "layers-symmetric": [1, 2, 3, 10, 11, 12]}


@pytest.fixture
def folders(tmp_path):
    """A fine-tuned 12-layer teacher and a pretrained 12-layer base without a pooler, as tiny random BERTs."""
    return save_teacher_and_base(tmp_path, layers=12)


def built(point, folders):
    args = train.parse_args(["--method", point.method, *point.flags, "--teacher", folders["teacher"],
                             "--model", folders["base"]])
    return train.build_model(args, train.RECIPES[point.method])


@pytest.mark.parametrize("point", [p for p in POINTS if p.family == "layers"], ids=lambda p: p.name)
def test_every_layer_set_of_the_ablation_copies_exactly_the_layers_it_names(point, folders):
    teacher = train.load_classifier(folders["teacher"])
    student = built(point, folders)
    assert student.layers == EXPECTED_LAYERS[point.name]
    assert student.model.config.num_hidden_layers == 6
    for slot, layer in enumerate(student.layers):
        copied = student.model.bert.encoder.layer[slot].state_dict()
        original = teacher.bert.encoder.layer[layer - 1].state_dict()
        assert copied.keys() == original.keys()
        assert all(torch.equal(copied[name], original[name]) for name in original), (point.name, slot, layer)
    for module in ("embeddings", "pooler"):
        ours, theirs = getattr(student.model.bert, module).state_dict(), getattr(teacher.bert, module).state_dict()
        assert all(torch.equal(ours[name], theirs[name]) for name in theirs)


def test_the_lora_points_change_rank_targets_and_scaling_and_nothing_else(folders):
    adapters = {}
    for point in (p for p in POINTS if p.family == "lora"):
        model = built(point, folders).model
        layers = [(name, m) for name, m in model.named_modules() if isinstance(m, LoRALinear)]
        adapters[point.name] = ({m.r for _, m in layers}, {m.scaling for _, m in layers},
                                {name.split(".", 4)[4] for name, _ in layers}, len(layers))
    query_value = {"attention.self.query", "attention.self.value"}
    assert adapters["lora"] == ({8}, {16 / 8}, query_value, 12)
    assert adapters["lora-r2"] == ({2}, {16 / 2}, query_value, 12)
    assert adapters["lora-r32"] == ({32}, {16 / 32}, query_value, 12)
    assert adapters["lora-r32-rslora"] == ({32}, {16 / math.sqrt(32)}, query_value, 12)
    assert adapters["lora-all-linear"][:2] == ({8}, {2.0}) and adapters["lora-all-linear"][3] == 6 * 6
    assert len(adapters["lora-all-linear"][2]) == 6


def test_the_plan_reuses_make_alls_and_the_studys_runs_and_names_the_others_by_point():
    plan = ablation_plan()
    outs = [run.out for run in plan]
    assert len(outs) == len(set(outs)), "every run once"
    study = {run.out: run for run in study_plan(3)}
    reused = [run for run in plan if not run.out.startswith("runs/ablations/")]
    assert reused and all(run == study[run.out] for run in reused), "same folder, same flags as make study's"
    assert {"runs/odd", "runs/even", "runs/lora", "runs/teacher", "runs/study/teacher-seed1",
            "runs/study/odd-seed2"} <= set(outs)
    for run in plan:  # every run after the runs it reads
        flags = dict(zip(run.flags[::2], run.flags[1::2]))
        for teacher in [flags.get("--teacher"), *flags.get("--soft-labels-from", "").split(",")]:
            if teacher:
                assert outs.index(teacher) < outs.index(run.out), (run.out, teacher)
    by_out = {run.out: planned_args(run) for run in plan}
    assert by_out["runs/ablations/prefix-odd"]["teacher"] == "runs/ablations/prefix-teacher"
    assert by_out["runs/ablations/prefix-odd"]["text_prefix"] == by_out["runs/ablations/prefix-teacher"]["text_prefix"] == "query: "
    assert by_out["runs/ablations/ensemble-odd-seed1"]["teacher"] == "runs/study/teacher-seed1"
    assert by_out["runs/ablations/ensemble-odd-seed2"]["soft_labels_from"] == \
        "runs/teacher,runs/study/teacher-seed1,runs/study/teacher-seed2"
    assert by_out["runs/ablations/transfer-odd-seed2"]["transfer_set"] == "insults-unlabelled"
    assert by_out["runs/ablations/layers-top"]["layers"] == "7,8,9,10,11,12" and "runs/ablations/layers-top-seed1" not in by_out
    assert len(ENSEMBLE_SEEDS) == 3 and {p.family for p in POINTS} == set(FAMILIES)


def test_reused_runs_are_skipped_once_make_all_and_the_study_trained_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for run in study_plan(3):
        write_history(run)
    plan = ablation_plan()
    assert all(is_done(run) for run in plan if not run.out.startswith("runs/ablations/"))
    assert not any(is_done(run) for run in plan if run.out.startswith("runs/ablations/"))


def test_seeds_can_be_changed_per_family_point_or_for_all():
    assert parse_seeds("1") == {"all": 1}
    assert parse_seeds("transfer=1, layers-top=3") == {"transfer": 1, "layers-top": 3}
    for bad in ("many", "layers=x", "colours=2", "lora=-1"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_seeds(bad)
    one = ablation_plan(seeds={"all": 1})
    assert not any("-seed" in run.out and "teacher" not in run.out for run in one), "seed 42 only (and its teachers)"
    assert {run.out for run in ablation_plan(seeds={"teacher": 0, "transfer": 0})}.isdisjoint(
        {"runs/ablations/ensemble-odd", "runs/ablations/transfer-odd", "runs/ablations/prefix-teacher"})
    three = {run.out for run in ablation_plan(seeds={"layers-top": 3})}
    assert {"runs/ablations/layers-top-seed1", "runs/ablations/layers-top-seed2"} <= three


def test_the_estimate_comes_from_the_recorded_runs_of_the_same_method_and_epochs(tmp_path):
    def record(name, method, minutes, **args):
        (tmp_path / name).mkdir(parents=True)
        (tmp_path / name / "history.json").write_text(json.dumps(
            {"method": method, "args": {"method": method, "epochs": train.RECIPES[method].epochs, **args},
             "total_time_s": 60 * minutes}))
    record("odd", "odd", 3.0)
    record("study/odd-seed1", "odd", 4.0)
    record("teacher", "teacher", 6.0)
    plain = PlannedRun("x", ("--method", "odd"))
    transfer = PlannedRun("y", ("--method", "odd", "--transfer-set", "insults-unlabelled"))
    assert estimate_minutes(plain, recorded_minutes(tmp_path)) == pytest.approx(3.5 + 0.35)
    assert estimate_minutes(transfer, recorded_minutes(tmp_path)) == pytest.approx(3.5 * 1.65 + 0.35)
    assert estimate_minutes(plain, recorded_minutes(tmp_path), threads=1) == pytest.approx(3.5 + 0.35)  # none on 1
    record("study/odd-seed2", "odd", 5.0, threads=1)  # on one thread beside another run: counted for threads=1 only
    assert estimate_minutes(plain, recorded_minutes(tmp_path), threads=1) == pytest.approx(5.0 + 0.35)
    assert estimate_minutes(plain, recorded_minutes(tmp_path)) == pytest.approx(3.5 + 0.35)
    assert math.isnan(estimate_minutes(PlannedRun("z", ("--method", "lora")), recorded_minutes(tmp_path)))
    record("ablations/transfer-odd", "odd", 7.0, transfer_set="insults-unlabelled")  # once recorded, it is used
    assert estimate_minutes(transfer, recorded_minutes(tmp_path)) == pytest.approx(7.0 + 0.35)
    assert estimate_minutes(plain, recorded_minutes(tmp_path)) == pytest.approx(3.5 + 0.35)
    resumed = tmp_path / "study" / "lora-seed1"  # its last process ran 2 of its 10 minutes of training
    resumed.mkdir(parents=True)
    resumed.joinpath("history.json").write_text(json.dumps(
        {"method": "lora", "args": {"method": "lora", "epochs": train.RECIPES["lora"].epochs},
         "total_time_s": 120.0, "wall_time_s": 600.0, "resumed_after_epochs": [8]}))
    assert estimate_minutes(PlannedRun("z", ("--method", "lora")), recorded_minutes(tmp_path)) == \
        pytest.approx(10.0 + 0.35)


def test_a_session_records_its_wall_time_and_a_dry_run_trains_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    main(["--dry-run", "--seeds", "1"])
    assert "to do" in capsys.readouterr().out and not Path("runs").exists()
    fake_train_processes(monkeypatch, returncode=0)
    main(["--seeds", "layers=1,lora=0,transfer=0,teacher=0"])
    sessions = json.loads(Path("runs/ablations/sessions.json").read_text())
    assert len(sessions) == 1 and sessions[0]["trained"] == 7 and sessions[0]["wall_time_s"] >= 0
    assert "ablations: 7 runs trained" in capsys.readouterr().out


def test_the_dry_run_warns_when_the_plan_would_not_fit_the_budget(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("experiments.ablations.estimate_minutes", lambda run, recorded, threads: 4.0)
    main(["--dry-run", "--seeds", "3"])
    runs = len(ablation_plan(seeds={"all": 3}))
    assert f"{runs} runs to do: about {4 * runs} minutes" in capsys.readouterr().out.split("\n")[-3]
    main(["--dry-run", "--seeds", "3"])
    assert "warning: more than the 90-minute budget" in capsys.readouterr().out
    monkeypatch.setattr("experiments.ablations.estimate_minutes", lambda run, recorded, threads: float("nan"))
    main(["--dry-run", "--seeds", "layers-top=1,all=0"])
    out = capsys.readouterr().out
    assert "nan" not in out and "to do (no recorded run to estimate from)" in out
    unknown = len(ablation_plan(seeds={"layers-top": 1, "all": 0}))
    assert f"for 0 of them, estimated from the recorded runs of the same method and epochs; " \
           f"{unknown} with no recorded run to estimate from" in out
    main(["--dry-run", "--seeds", "layers=1,lora=0,transfer=0,teacher=0"])
    assert "warning" not in capsys.readouterr().out
    assert "ensemble-transfer-odd" not in " ".join(run.out for run in ablation_plan()), "the combination is opt-in"
    assert any(run.out.endswith("ensemble-transfer-odd") for run in ablation_plan(seeds={"ensemble-transfer-odd": 1}))


def test_seeds_are_fitted_to_the_budget_from_the_recorded_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert fitted_seeds("runs") is None, "nothing recorded yet: nothing to estimate from"
    minutes = {"teacher": 6.0, "odd": 4.0, "even": 4.0, "lora": 3.0}
    for run in study_plan(3):
        args = planned_args(run)
        write_history(run)
        history = json.loads(Path(run.out, "history.json").read_text())
        Path(run.out, "history.json").write_text(json.dumps(
            {**history, "method": args["method"], "total_time_s": 60 * minutes.get(args["method"], 5.0)}))
    # Every own point at one seed: 4 layer sets at 4 + 4 LoRA points at 3 + the transfer student at 4 x 1.65
    # + the ensemble student at 4 + the prefix teacher at 6 and its student at 4, each with 0.35 of start-up.
    one_seed = 4 * 4.35 + 4 * 3.35 + (4 * 1.65 + 0.35) + 4.35 + 6.35 + 4.35
    transfer_three, ensemble_three = one_seed + 2 * (4 * 1.65 + 0.35), one_seed + 2 * (4 * 1.65 + 0.35) + 2 * 4.35
    own = {point.name for point in POINTS if not point.reused and point.family not in ON_REQUEST}
    for budget, transfer, ensemble in ((one_seed + 1, 1, 1), (transfer_three + 1, 3, 1), (ensemble_three + 1, 3, 3),
                                       (one_seed - 10, 1, 1)):
        seeds = fitted_seeds("runs", budget=budget)
        assert set(seeds) == own and seeds["transfer-odd"] == transfer and seeds["ensemble-odd"] == ensemble
        assert seeds["ensemble-transfer-odd"] == 0 and seeds["layers-top"] == seeds["lora-r2"] == 1
    # Two runs at once take about half the time: a budget of half the one-seed plan fits it, not more.
    assert fitted_seeds("runs", budget=one_seed / 2 + 1, jobs=2)["transfer-odd"] == 1
    assert fitted_seeds("runs", budget=transfer_three / 2 + 1, jobs=2)["transfer-odd"] == 3
    main(["--dry-run"])
    assert "seeds fitted to the 90-minute budget: {" in capsys.readouterr().out


def test_the_stronger_teachers_family_is_planned_only_on_request_and_pairs_every_student_with_its_seed():
    assert not [run for run in ablation_plan() if "strong" in run.out]
    assert not [run for run in ablation_plan(seeds={"all": 3}) if "strong" in run.out], "all leaves it out"
    plan = ablation_plan(seeds={"all": 0, "strong": 3, "minilm-kd": 5, "teacher-strong": 5})
    args = {run.out: planned_args(run) for run in plan}
    order = [run.out for run in plan]
    odd = args["runs/ablations/strong-odd-seed1"]
    assert (odd["method"], odd["teacher"], odd["soft_labels_from"]) == (
        "odd", "runs/study/teacher-seed1", "runs/study/teacher-strong-seed1")
    assert (odd["temperature"], odd["alpha_kd"]) == (train.RECIPES["minilm-kd"].temperature,
                                                    train.RECIPES["minilm-kd"].alpha_kd)
    assert args["runs/study/minilm-kd-seed4"]["teacher"] == "runs/study/teacher-strong-seed4"
    assert args["runs/ablations/minilm-kd-transfer"]["teacher"] == "runs/study/teacher-strong"
    assert args["runs/ablations/minilm-kd-transfer"]["transfer_set"] == "insults-unlabelled"
    assert args["runs/ablations/strong-lora-seed2"]["method"] == "lora-kd"
    for run in plan:  # every teacher a run reads trains before it
        for read in (args[run.out].get("teacher"), args[run.out].get("soft_labels_from")):
            if read and train.RECIPES[args[run.out]["method"]].needs_teacher:
                assert order.index(read) < order.index(run.out), (run.out, read)
    assert sum(out.startswith("runs/study/minilm-kd") for out in order) == 5
    assert sum(out.startswith("runs/study/teacher-strong") for out in order) == 5
    assert sum(out.startswith("runs/study/odd-ce") for out in order) == 3
