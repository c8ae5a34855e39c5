"""The findings sentences that report wall times come from the runs' histories, not from text."""
from report.findings import pipeline_time, study_time


def record(name, method, seed, primary, seconds, folder="runs"):
    return {"name": name, "method": method, "seed": seed, "primary": primary, "command_wall_time_s": seconds,
            "path": f"{folder}/{name}"}


def test_pipeline_and_study_times_are_summed_from_the_runs():
    records = [record("odd", "odd", 42, True, 240.0), record("even", "even", 42, True, 180.0),
               record("odd-ce", "odd-ce", 42, True, 120.0, folder="runs/study"),
               record("odd-seed1", "odd", 1, False, 210.0, folder="runs/study"),
               record("even-seed1", "even", 1, False, 150.0, folder="runs/study"),
               record("odd-seed2", "odd", 2, False, 270.0, folder="runs/study")]
    assert pipeline_time(records).endswith("odd 4.0, even 3.0; 7.0 in all.")  # make all's runs only
    sentence = study_time(records, evaluate_time_s=300.0)
    assert "`make study SEEDS=3`, seeds 1, 2, 42" in sentence
    assert "beyond the 2 runs of `make all` (7.0 minutes, reused), its 4 runs (even, odd, odd-ce)" in sentence
    assert sentence.endswith("took 12.5 minutes of `train.py` in all, 2.0 to 4.5 each, and `python -m report` "
                             "5.0 minutes.")
    sessions = [{"trained": 3, "skipped": 2, "failed": 0, "wall_time_s": 540.0},
                {"trained": 1, "skipped": 5, "failed": 0, "wall_time_s": 300.0}]
    assert study_time(records, 300.0, sessions).endswith(
        "5.0 minutes. Measured by the study itself, start-up of every `train.py` included: 14.0 minutes of wall "
        "time for the 4 runs it trained, in 2 session(s).")


def test_without_study_runs_there_is_no_study_sentence():
    assert study_time([record("odd", "odd", 42, True, 240.0)]) is None


# ------------------------------------------------- every sentence of the Findings, on known inputs

def summary(*aucs):
    """seed_summary's shape for one method: the mean and sample std of its runs' test ROC-AUC."""
    import statistics
    return {"roc_auc": {"mean": statistics.mean(aucs), "std": statistics.stdev(aucs) if len(aucs) > 1 else None,
                        "n": len(aucs)}}


def run_record(name, method, *, validation_f1, test_f1, trainable=None, adapter_mb=None, speed=None, flags=()):
    total = 20_000_000
    return {"name": name, "method": method, "seed": 42, "primary": True, "flags": list(flags),
            "validation": {"macro_f1": validation_f1}, "test": {"at_validation_threshold": {"macro_f1": test_f1}},
            "params": {"total": total, "trainable": trainable or total, "trainable_share": (trainable or total) / total},
            "adapter_size_mb": adapter_mb, "size_mb": 80.4,
            "speed": speed and {"batch_1": {"examples_per_s": speed}}, "command_wall_time_s": 60.0}


def comparison_result(a, b, difference, low, high, per_seed, verdict):
    return {"a": a, "b": b, "difference": difference, "ci95": [low, high], "p_holm": 0.012, "family": "primary",
            "family_size": 3, "per_seed_differences": per_seed, "verdict": verdict, "n_seeds": len(per_seed)}


SEEDS = {"teacher": summary(0.95), "odd": summary(0.92, 0.93), "even": summary(0.90, 0.91), "lora": summary(0.88)}


def test_best_method_and_the_served_run():
    from report.findings import best_method, served_run
    assert best_method(SEEDS) == "Best test ROC-AUC of every method, baselines included: **teacher**, 0.950."
    assert best_method({"odd": SEEDS["odd"], "lora": SEEDS["lora"]}) == \
        "Best test ROC-AUC of every method, baselines included: **odd**, 0.925 ± 0.007 over 2 seeds."
    records = [run_record("teacher", "teacher", validation_f1=0.81, test_f1=0.79),
               run_record("odd", "odd", validation_f1=0.84, test_f1=0.80)]
    assert served_run(records) == ("The web app serves `odd`, the run with the best validation macro-F1 "
                                   "(0.840; test macro-F1 0.800).")
    records.append(run_record("odd-seed1", "odd", validation_f1=0.83, test_f1=0.82))
    records.append(run_record("minilm", "minilm", validation_f1=0.90, test_f1=0.85))  # not a student
    assert served_run(records, {"method": "odd", "runs": ["odd", "odd-seed1"]}) == (
        "The web app serves `odd`: of the best 6-layer student's runs (`odd`), the one with the best validation "
        "macro-F1 (0.840; test macro-F1 0.800).")


def test_comparison_sentences_give_the_verdict_and_warn_when_seeds_disagree():
    from report.findings import comparison
    clear = comparison_result("odd", "even", 0.02, 0.011, 0.029, {"1": 0.015, "42": 0.025}, "odd better")
    assert comparison(clear) == (
        "odd − even, test ROC-AUC: +0.020 (95% CI [+0.011, +0.029] over seeds and test comments; Holm p 0.012 "
        "among 3 primary comparisons; per seed: +0.015, +0.025). **odd better**.")
    flipping = comparison_result("lora", "odd", -0.01, -0.02, -0.001, {"1": 0.004, "42": -0.024}, "odd better")
    assert comparison(flipping).endswith(
        "**odd better**. But the per-seed differences change sign, so the seed "
        "matters as much as the method.")
    all_negative = comparison_result("lora", "odd", -0.03, -0.04, -0.02, {"1": -0.02, "42": -0.04}, "odd better")
    assert comparison(all_negative).endswith("per seed: −0.020, −0.040). **odd better**.")
    noise = comparison_result("lora-kd", "lora", 0.002, -0.001, 0.005, {"42": 0.002}, "no difference detected")
    assert comparison(noise).endswith("over test comments only (a single seed, so seed noise is not covered); "
                                      "Holm p 0.012 among 3 primary comparisons; per seed: +0.002). No difference "
                                      "detected; the interval allows ±0.005.")


def test_lora_gap_and_teacher_retention():
    from report.findings import lora_gap, teacher_retention
    assert lora_gap(SEEDS) == "LoRA vs the best distilled student (odd): test ROC-AUC 0.880 vs 0.925, a gap of −0.045."
    assert lora_gap({"odd": SEEDS["odd"]}) is None and lora_gap({"lora": SEEDS["lora"]}) is None
    assert teacher_retention(SEEDS) == ("Share of the teacher's skill above chance, (ROC-AUC − 0.5) / (0.950 − 0.5), "
                                        "that each method keeps: odd 94.4%, even 90.0%, lora 84.4%.")
    assert teacher_retention({"teacher": SEEDS["teacher"]}) is None
    assert teacher_retention({"odd": SEEDS["odd"], "even": SEEDS["even"]}) is None


def test_costs_sentence_names_the_adapter_and_the_speedups():
    from report.findings import costs
    records = [run_record("teacher", "teacher", validation_f1=0.8, test_f1=0.8, speed=20.0),
               run_record("odd", "odd", validation_f1=0.8, test_f1=0.8, speed=45.0),
               run_record("lora", "lora", validation_f1=0.8, test_f1=0.8, trainable=150_000, adapter_mb=0.6,
                          speed=41.0)]
    assert costs(records) == (
        "lora trains 0.15 M parameters (0.8% of 20.00 M); its adapter takes 0.60 MB next to 80.4 MB for the "
        "whole run folder. Speed at batch 1 relative to the teacher (20.0 comments/s, one measurement each): the "
        "20.00 M-parameter models (odd, lora) ×2.15, ×2.05 to ×2.25. Models of one size run the same graph, so the "
        "spread within a group is measurement noise, not a difference between methods.")
    assert costs([run_record("odd", "odd", validation_f1=0.8, test_f1=0.8)]) is None


def test_degenerate_runs_are_named():
    from report.findings import degenerate
    fine = run_record("odd", "odd", validation_f1=0.8, test_f1=0.8)
    assert degenerate([fine]) == "No run was flagged as degenerate."
    broken = run_record("lora", "lora", validation_f1=0.4, test_f1=0.4, flags=["constant predictions"])
    assert degenerate([fine, broken]) == ("⚠ **1 run(s) flagged as degenerate: lora.** Their numbers are not "
                                          "to be trusted; see the warnings above.")


def test_findings_lead_with_the_questions_comparisons_and_leave_out_skipped_ones():
    from report.findings import findings
    records = [run_record("teacher", "teacher", validation_f1=0.81, test_f1=0.79, speed=20.0),
               run_record("odd", "odd", validation_f1=0.84, test_f1=0.80, speed=45.0)]
    results = {"runs": records, "seeds": {"teacher": SEEDS["teacher"], "odd": SEEDS["odd"]},
               "comparisons": {"odd_vs_even": {"skipped": "no even run"},
                               "lora_vs_odd": comparison_result("lora", "odd", -0.03, -0.04, -0.02, {"42": -0.03},
                                                                "odd better")},
               "bare_insults": []}
    sentences = findings(results)
    assert [s.split(" ")[0] for s in sentences] == ["lora", "Best", "The", "Share", "Speed", "Wall", "No"]
    assert sentences[0].startswith("lora − odd, test ROC-AUC")
    assert not any("odd − even" in s for s in sentences)


def test_teacher_spread_and_recipes():
    from report.findings import recipes, teacher_spread
    teacher = {**summary(0.936, 0.927, 0.931), "per_seed": {"roc_auc": {"1": 0.927, "2": 0.931, "42": 0.936}}}
    assert teacher_spread({"teacher": teacher}) == (
        "The teacher's own seed-to-seed spread: test ROC-AUC 0.931 ± 0.005 over 3 seeds, from 0.927 to 0.936 "
        "(0.927 with seed 1, 0.931 with seed 2, 0.936 with seed 42).")
    assert teacher_spread({"teacher": summary(0.93)}) is None  # one teacher: no spread to give
    tuned = [{**run_record(m, m, validation_f1=0.8, test_f1=0.8), "recipe": {"lr": lr, "epochs": e,
                                                                          "defaults_from": "train.py"}}
             for m, lr, e in (("teacher", 5e-5, 3), ("lora", 1e-3, 6))]
    assert recipes(tuned).startswith("Learning rate × epochs of each method: teacher 5e-05 × 3, lora 0.001 × 6; "
                                     "each chosen by `make tune` on validation ROC-AUC at seed 0, no seed of the study")
    assert "written into train.py's RECIPES table" in recipes(tuned)  # RECIPES repeats make tune's choices
    tuned[1]["recipe"]["defaults_from"] = "flags"
    assert "some from `make tune`, some hand-set or given as flags" in recipes(tuned)


def test_runs_trained_side_by_side_are_named_since_their_sum_is_not_the_wall_time():
    alone, beside = record("odd", "odd", 42, True, 240.0), {**record("lora", "lora", 42, True, 300.0), "threads": 1}
    assert pipeline_time([alone]).endswith("4.0 in all.")
    assert pipeline_time([alone, beside]).endswith(
        "9.0 in all. lora trained side by side with another run (`JOBS=2`, a share of the cores each), so each "
        "took longer than it would alone, and `make all` took less wall time than this sum.")
