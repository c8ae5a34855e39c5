"""The study and tuning plans, and the runner that skips finished runs (no training: train.py is not run)."""
import json
import math
import shutil
from pathlib import Path

import pytest

from experiments import runner, tune
from experiments.runner import PlannedRun, execute, is_done, planned_args
from conftest import fake_train_processes
from experiments.study import study_plan, study_seeds
import train
from train import RECIPES


def write_history(run: PlannedRun, **changes) -> None:
    """A finished run folder whose history.json records the run's planned arguments (with ``changes``)."""
    Path(run.out).mkdir(parents=True, exist_ok=True)
    (Path(run.out) / "history.json").write_text(json.dumps({"args": {**planned_args(run), **changes}}))


def test_the_study_retrains_the_whole_chain_per_seed_and_reuses_make_alls_runs():
    plan = study_plan(3)
    by_out = {run.out: run.flags for run in plan}
    assert len(plan) == 11 + 10 + 10  # TF-IDF has no randomness: trained once
    for seed, teacher in ((42, "runs/teacher"), (1, "runs/study/teacher-seed1"), (2, "runs/study/teacher-seed2")):
        suffix = "" if seed == 42 else f"-seed{seed}"
        folder = "runs/" if seed == 42 else "runs/study/"
        assert [run.out for run in plan].index(teacher) < [run.out for run in plan].index(f"{folder}odd{suffix}")
        for method in ("odd", "even", "lora-kd", "odd-ce", "lora-odd"):  # all that read a teacher read teacher_s
            out = f"runs/study/{method}{suffix}" if seed != 42 or method in ("odd-ce", "lora-odd") else f"runs/{method}"
            flags = by_out[out]
            assert flags[flags.index("--teacher") + 1] == teacher and flags[flags.index("--seed") + 1] == str(seed)
    assert "--teacher" not in by_out["runs/study/lora-seed1"] and "runs/study/tfidf-seed1" not in by_out


def test_another_dataset_gets_a_folder_of_its_own_and_only_the_methods_asked_for(capsys):
    from experiments import study
    plan = study_plan(2, methods=("teacher", "odd", "lora", "tfidf"), dataset="toxic-comments")
    assert [run.out for run in plan] == [f"runs/toxic-comments/{name}" for name in (
        "teacher-seed42", "odd-seed42", "lora-seed42", "tfidf-seed42", "teacher-seed1", "odd-seed1", "lora-seed1")]
    odd = planned_args(plan[5])
    assert odd["dataset"] == "toxic-comments" and odd["teacher"] == "runs/toxic-comments/teacher-seed1"
    assert planned_args(plan[0])["lr"] == RECIPES["teacher"].lr, "the recipes tuned on insults"
    for methods, error in (("odd,lora", "odd needs its teacher: put teacher before it"), ("odd,bert", "unknown method(s) bert")):
        with pytest.raises(SystemExit):
            study.main(["--methods", methods, "--dry-run"])
        assert error in capsys.readouterr().err
    with pytest.raises(SystemExit):
        study.main(["--dataset", "my.csv", "--dry-run"])
    assert "invalid choice: 'my.csv'" in capsys.readouterr().err


def test_make_all_trains_the_seed_42_runs_of_the_main_methods_and_baselines_only(capsys):
    from experiments import study
    study.main(["--make-all", "--dry-run"])
    folders = [line.split("\t")[1] for line in capsys.readouterr().out.splitlines()]
    assert folders == [f"runs/{method}" for method in study.MAKE_ALL]


@pytest.mark.parametrize("command", ["study", "tune", "ablations"])
def test_jobs_below_one_is_a_one_line_error_of_every_plan_command(command, capsys):
    from experiments import ablations, study
    main = {"study": study.main, "tune": tune.main, "ablations": ablations.main}[command]
    with pytest.raises(SystemExit):
        main(["--jobs", "0", "--dry-run"] if command != "tune" else ["--jobs", "0"])
    assert "argument --jobs: '0' is not a whole number of at least 1" in capsys.readouterr().err


def test_a_finished_run_is_done_only_with_the_same_arguments(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_all_odd = PlannedRun("runs/odd", ("--method", "odd"))  # as `make all` types it
    write_history(make_all_odd)
    study_odd = next(run for run in study_plan(2) if run.out == "runs/odd")
    assert is_done(study_odd)  # --seed 42 --teacher runs/teacher are make all's defaults: reused
    write_history(make_all_odd, lr=1e-4)
    assert not is_done(study_odd)  # another recipe: trained again
    write_history(make_all_odd, threads=1, out="elsewhere")
    assert is_done(study_odd)  # where and how fast a run went does not change what it learned
    assert not is_done(PlannedRun("runs/even", ("--method", "even")))


def test_a_teacher_named_by_another_path_to_the_same_folder_is_the_same_setting(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for teacher in ("runs/teacher", "runs/teacher-seed1"):
        Path(teacher).mkdir(parents=True)
    odd = PlannedRun("runs/odd", ("--method", "odd", "--teacher", "runs/teacher"))
    write_history(odd, teacher=str(tmp_path / "runs" / "teacher"))  # planned from another working directory
    assert is_done(odd)
    (tmp_path / "link").symlink_to(tmp_path / "runs")
    write_history(odd, teacher="link/teacher/")
    assert is_done(odd)
    write_history(odd, teacher=str(tmp_path / "runs" / "teacher-seed1"))
    assert not is_done(odd)  # another teacher
    write_history(odd, teacher="runs/gone")
    assert not is_done(odd)  # a teacher that no longer exists cannot be shown to be the same


def test_a_run_of_train_py_alone_counts_as_done_its_extras_flags_at_their_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = PlannedRun("runs/odd", ("--method", "odd"))
    write_history(run)
    history = json.loads(Path("runs/odd/history.json").read_text())
    history["args"] = vars(train.parse_args(["--method", "odd"]))  # what `python train.py --method odd` records
    assert {"cos_on", "transfer_set", "soft_labels_from"}.isdisjoint(history["args"])
    Path("runs/odd/history.json").write_text(json.dumps(history))
    assert is_done(run)
    assert not is_done(PlannedRun("runs/odd", ("--method", "odd", "--cos-on", "hidden")))


def test_a_run_that_does_not_record_a_planned_setting_is_trained_again(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = PlannedRun("runs/lora", ("--method", "lora"))
    write_history(run)
    assert is_done(run)
    history = json.loads(Path("runs/lora/history.json").read_text())
    del history["args"]["lora_dropout"]  # what it was trained with is unknown, so it cannot stand for the plan
    history["args"]["obsolete_flag"] = "kept"  # a setting the plan no longer has changes nothing
    Path("runs/lora/history.json").write_text(json.dumps(history))
    assert not is_done(run)


def test_execute_trains_what_is_not_done_resumes_what_was_interrupted_and_stops_at_a_failure(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    done, interrupted, fresh = (PlannedRun(f"runs/{m}", ("--method", m)) for m in ("odd", "even", "lora"))
    write_history(done)
    monkeypatch.setattr(runner, "can_resume", lambda run: run is interrupted)
    started = fake_train_processes(monkeypatch, returncode=0)
    assert execute([done, interrupted, fresh]) == {"trained": 2, "skipped": 1, "failed": 0}
    assert [s["command"] for s in started] == [
        ["-m", "experiments.train_extras", "--method", "even", "--out", "runs/even", "--resume"],
        ["-m", "experiments.train_extras", "--method", "lora", "--out", "runs/lora"]]
    assert [s["stdout"] for s in started] == [None, None]  # one at a time: printed on the console
    fake_train_processes(monkeypatch, returncode=1)
    with pytest.raises(SystemExit, match="run the same command again"):
        execute([fresh, interrupted])
    assert execute([fresh, interrupted], stop_on_failure=False) == {"trained": 0, "skipped": 0, "failed": 2}


def test_with_two_jobs_a_run_waits_for_its_teacher_and_each_run_gets_one_thread_and_a_log(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(runner.os, "cpu_count", lambda: 2)
    plan = [run for run in study_plan(3) if run.out in
            ("runs/study/teacher-seed1", "runs/study/odd-seed1", "runs/study/teacher-seed2")]
    started = fake_train_processes(monkeypatch, returncode=0, polls_to_exit=2)
    assert execute(plan, jobs=2) == {"trained": 3, "skipped": 0, "failed": 0}
    outs = [s["command"][s["command"].index("--out") + 1] for s in started]
    assert outs == ["runs/study/teacher-seed1", "runs/study/teacher-seed2", "runs/study/odd-seed1"]
    assert started[1]["finished_before"] == []  # the second teacher trains beside the first
    assert "runs/study/teacher-seed1" in started[2]["finished_before"]  # odd-seed1 reads teacher-seed1
    assert all(s["command"][-2:] == ["--threads", "1"] for s in started)
    assert [s["stdout"] for s in started] == [f"{out}.log" for out in outs]


def test_with_two_jobs_the_runs_that_others_read_start_first(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    plan = [run for run in study_plan(3) if run.out in
            ("runs/study/teacher-seed1", "runs/study/odd-seed1", "runs/study/lora-seed1",
             "runs/study/teacher-seed2", "runs/study/odd-seed2")]
    started = fake_train_processes(monkeypatch, returncode=0, polls_to_exit=2)
    execute(plan, jobs=2)
    outs = [s["command"][s["command"].index("--out") + 1] for s in started]
    assert outs[:2] == ["runs/study/teacher-seed1", "runs/study/teacher-seed2"]  # not lora-seed1, planned before
    assert sorted(outs[2:]) == ["runs/study/lora-seed1", "runs/study/odd-seed1", "runs/study/odd-seed2"]


def test_with_two_jobs_a_failure_lets_the_run_under_way_finish_and_starts_nothing_more(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    plan = [PlannedRun(f"runs/{m}", ("--method", m)) for m in ("lora", "minilm", "tfidf")]
    started = fake_train_processes(monkeypatch, returncode=1)
    with pytest.raises(SystemExit, match="run the same command again"):
        execute(plan, jobs=2)
    assert len(started) == 2 and all(s["process"].returncode == 1 for s in started)


def fake_training(score, kd_bonus=None):
    """An ``execute`` that writes the history a tuning run would have: ``score(method, lr, epochs)`` gives its
    validation ROC-AUC and best epoch (None: the setting failed, and train.py left no finished run folder);
    ``kd_bonus`` adds to it by (temperature, alpha_kd)."""
    def execute(plan, stop_on_failure=True, jobs=1):
        assert not stop_on_failure, "a failed setting is a result of the search, not the end of it"
        for run in plan:
            args = planned_args(run)
            result = score(args["method"], args["lr"], args["epochs"])
            if result is None:
                continue
            auc, best_epoch = result
            auc += (kd_bonus or {}).get((args["temperature"], args["alpha_kd"]), 0.0)
            Path(run.out).mkdir(parents=True, exist_ok=True)
            (Path(run.out) / "history.json").write_text(json.dumps({
                "args": args, "best_epoch": best_epoch, "total_time_s": 60.0,
                "epochs": [{"validation": {"roc_auc": auc}}] * args["epochs"]}))
    return execute


def peaked(best_lr: float, best_epochs: int, peaks_early: bool = True):
    """A validation ROC-AUC that falls with the distance from (best_lr, best_epochs) on a log scale."""
    def score(method, lr, epochs):
        auc = 0.95 - 0.01 * abs(math.log2(lr / best_lr)) - 0.002 * abs(epochs - best_epochs)
        return auc, (max(1, epochs - 1) if peaks_early or epochs > best_epochs else epochs)
    return score


def test_a_resumed_tuning_run_counts_its_time_before_the_resume(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = tune.tuning_run("runs/tune", "teacher", 5e-5, 3, None, ())
    fake_training(peaked(best_lr=5e-5, best_epochs=3))([run], stop_on_failure=False)
    history = json.loads((Path(run.out) / "history.json").read_text())
    (Path(run.out) / "history.json").write_text(json.dumps({**history, "total_time_s": 60.0, "wall_time_s": 900.0,
                                                            "resumed_after_epochs": [2]}))
    assert tune.validation_score(run)["total_time_s"] == 900.0


def test_tuning_uses_no_seed_of_the_study():
    assert tune.SEED not in study_seeds(10)


def test_a_grid_grows_past_its_edge_until_the_best_is_inside_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tune, "execute", fake_training(peaked(best_lr=1.6e-2, best_epochs=15, peaks_early=False)))
    rows, chosen = tune.tune_methods(["lora"], "runs/tune", {}, (), jobs=1)["lora"]
    tried = [(row["lr"], row["epochs"]) for row in rows]
    assert tried[:8] == [(lr, e) for e in (6, 10) for lr in tune.GRIDS["lora"][0]]  # the starting grid first
    assert (8e-3, 10) in tried and (4e-3, 15) in tried  # one step beyond both edges the grid's best sat at
    assert (3.2e-2, 15) in tried and (1.6e-2, 20) in tried  # the best's neighbours, which scored worse
    assert (chosen["lr"], chosen["epochs"], chosen["interior"]) == (1.6e-2, 15, True)


def test_a_best_point_inside_the_starting_grid_trains_nothing_more(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tune, "execute", fake_training(peaked(best_lr=1e-3, best_epochs=6)))
    rows, chosen = tune.tune_methods(["lora"], "runs/tune", {}, (), jobs=1)["lora"]
    assert len(rows) == 8 and (chosen["lr"], chosen["epochs"], chosen["interior"]) == (1e-3, 6, True)


def test_the_search_stops_after_its_last_step_and_says_the_choice_is_at_an_edge(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tune, "execute", fake_training(lambda method, lr, epochs: (0.9 + lr, 1)))  # higher is better
    rows, chosen = tune.tune_methods(["teacher"], "runs/tune", {}, (), jobs=1)["teacher"]
    assert len(rows) == 3 + tune.MAX_EXTENSIONS and not chosen["interior"] and chosen["at_edge"] == ["highest lr"]
    assert chosen["lr"] == 1e-4 * 2 ** tune.MAX_EXTENSIONS


def test_tuning_chooses_on_validation_and_writes_its_choices(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    interior = peaked(best_lr=5e-5, best_epochs=3)

    def score(method, lr, epochs):
        if method == "minilm" and lr == 2.5e-5:
            return None  # diverged
        if method == "teacher" and lr == 1e-4:
            return 0.99, 2
        return peaked(best_lr=1e-3, best_epochs=6)(method, lr, epochs) if RECIPES[method].lora else \
            interior(method, lr, epochs)
    monkeypatch.setattr(tune, "execute", fake_training(score, kd_bonus={(4.0, 0.9): 0.01}))
    tune.main(["--out", "results"])

    chosen = json.loads(Path("results/tuned_defaults.json").read_text())["methods"]
    assert set(chosen) == set(tune.TUNED)
    # the distillation settings: searched at minilm-kd's chosen lr and epochs, on the chosen teacher-strong
    assert (chosen["minilm-kd"]["temperature"], chosen["minilm-kd"]["alpha_kd"]) == (4.0, 0.9)
    assert chosen["minilm-kd"]["validation_roc_auc"] == pytest.approx(0.95 - 0.002 * 3)  # the lr search's
    assert "temperature" not in chosen["odd"]
    kd_runs = json.loads(Path("results/tuning.json").read_text())["kd_runs"]
    assert len(kd_runs) == 6 and {r["lr"] for r in kd_runs} == {chosen["minilm-kd"]["lr"]}
    default = [r for r in kd_runs if (r["temperature"], r["alpha_kd"]) == (2.0, 0.5)]
    assert default[0]["run"] == "runs/tune/minilm-kd-lr5e-05-ep6", "the recipe's point is the chosen run"
    hottest = json.loads(Path("runs/tune/minilm-kd-lr5e-05-ep6-T4-kd0.9/history.json").read_text())["args"]
    assert (hottest["alpha_ce"], hottest["teacher"]) == (pytest.approx(0.1), "runs/tune/teacher-strong-lr4e-05-ep3")
    assert chosen["teacher"] == {"lr": 1e-4, "epochs": 3, "validation_roc_auc": 0.99}
    assert chosen["lora"] == {"lr": 1e-3, "epochs": 6, "validation_roc_auc": 0.95}
    assert chosen["odd-ce"]["lr"] == 5e-5  # a control is searched as a method of its own
    runs = json.loads(Path("results/tuning.json").read_text())["runs"]
    students = [r for r in runs if r["method"] == "odd"]
    assert all(json.loads((Path(r["run"]) / "history.json").read_text())["args"]["teacher"] ==
               "runs/tune/teacher-lr0.0001-ep3" for r in students)  # students read the chosen teacher
    assert all(json.loads((Path(r["run"]) / "history.json").read_text())["args"]["seed"] == tune.SEED
               for r in runs if not r.get("failed"))
    markdown = Path("results/tuning.md").read_text()
    assert "| lora | 0.001 | 6 | start | 5 | 0.9500 | 1.0 min | ✓ |" in markdown
    assert "| minilm | 2.5e-05 | 3 | start | – | failed | 0.0 min |  |" in markdown
    assert "| teacher | 0.0002 | 3 | step 1 |" in markdown  # 1e-4 won at the top of the grid: one step beyond
    assert "| teacher | 0.0001 | 3 | 0.9900 | yes |" in markdown
    assert "## Distillation settings" in markdown and "| minilm-kd | 5e-05 | 6 | 4 | 0.9 | 5 | 0.9540 | 1.0 min | ✓ |" \
        in markdown
    assert "Not searched yet" not in markdown


def test_methods_searches_some_methods_and_keeps_the_others_choices(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match="search every method first"):
        tune.main(["--methods", "lora", "--out", "results"])
    monkeypatch.setattr(tune, "execute", fake_training(peaked(best_lr=1e-3, best_epochs=6)))
    tune.main(["--out", "results"])
    before = json.loads(Path("results/tuning.json").read_text())

    monkeypatch.setattr(tune, "execute", fake_training(peaked(best_lr=5e-4, best_epochs=10)))
    tune.main(["--methods", "lora-kd,lora", "--out", "results", "--runs-dir", "runs/retune"])

    after = json.loads(Path("results/tuning.json").read_text())
    chosen = json.loads(Path("results/tuned_defaults.json").read_text())["methods"]
    assert (chosen["lora"]["lr"], chosen["lora"]["epochs"]) == (5e-4, 10) and chosen["lora-kd"]["lr"] == 5e-4
    assert {m: chosen[m]["lr"] for m in ("teacher", "odd", "minilm")} == {
        m: before["chosen"][m]["lr"] for m in ("teacher", "odd", "minilm")}
    assert [r for r in after["runs"] if r["method"] not in ("lora", "lora-kd")] == [
        r for r in before["runs"] if r["method"] not in ("lora", "lora-kd")]
    assert all(r["run"].startswith("runs/retune/") for r in after["runs"] if r["method"] in ("lora", "lora-kd"))
    assert all(json.loads((Path(r["run"]) / "history.json").read_text())["args"]["teacher"] ==
               before["chosen"]["teacher"]["run"] for r in after["runs"] if r["method"] == "lora-kd")
    assert after["chosen"]["odd"]["searched_by"] == before["generated_by"] == "python -m experiments.tune --out results"
    markdown = Path("results/tuning.md").read_text()
    assert ("`python -m experiments.tune --methods lora-kd,lora --out results --runs-dir runs/retune` (lora, lora-kd)"
            in markdown)

    shutil.rmtree(before["chosen"]["teacher"]["run"])
    with pytest.raises(SystemExit, match="which is not on disk; add teacher to --methods"):
        tune.main(["--methods", "odd", "--out", "results"])
    with pytest.raises(SystemExit):
        tune.main(["--methods", "odd,tfidf"])
    assert "unknown method(s) tfidf" in capsys.readouterr().err


def test_a_method_never_searched_stays_out_until_it_is(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tune, "execute", fake_training(peaked(best_lr=2e-5, best_epochs=3)))
    tune.main(["--out", "results"])
    previous = json.loads(Path("results/tuning.json").read_text())
    for method in ("teacher-strong", "minilm-kd"):  # as a tuning.json written before these methods existed
        del previous["chosen"][method]
    previous["runs"] = [r for r in previous["runs"] if r["method"] not in ("teacher-strong", "minilm-kd")]
    previous["kd_runs"] = []
    Path("results/tuning.json").write_text(json.dumps(previous))

    with pytest.raises(SystemExit, match=r"the chosen teacher-strong \(none chosen yet\), which is not on disk; add teacher-strong"):
        tune.main(["--methods", "minilm-kd", "--out", "results"])
    tune.main(["--methods", "teacher-strong", "--out", "results"])
    chosen = json.loads(Path("results/tuned_defaults.json").read_text())["methods"]
    assert "minilm-kd" not in chosen and chosen["teacher-strong"]["lr"] == 2e-5
    assert "Not searched yet, so train.py's recipe is not a choice of this search: minilm-kd." in \
        Path("results/tuning.md").read_text()


def test_a_run_left_to_train_alone_gets_every_core(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(runner.os, "cpu_count", lambda: 4)
    started = fake_train_processes(monkeypatch, returncode=0, polls_to_exit=1)
    execute([PlannedRun("runs/study/teacher-seed1", ("--method", "teacher", "--seed", "1"))], jobs=2)
    assert started[0]["command"][-2:] == ["--threads", "4"]


def test_methods_search_side_by_side_each_round_one_plan(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    plans = []
    train_them = fake_training(peaked(best_lr=1e-3, best_epochs=6))

    def execute(plan, stop_on_failure=True, jobs=1):
        plans.append(sorted({planned_args(run)["method"] for run in plan}))
        train_them(plan, stop_on_failure, jobs)
    monkeypatch.setattr(tune, "execute", execute)
    searched = tune.tune_methods(["lora", "lora-kd"], "runs/tune", {"teacher": "runs/tune/teacher"}, (), jobs=2)
    assert plans == [["lora", "lora-kd"]] and set(searched) == {"lora", "lora-kd"}
