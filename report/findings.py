"""The findings in words, every number inserted from the results (none is ever typed by hand)."""
from pathlib import PurePosixPath

import numpy as np

from report.behaviour import DISTILLED, bare_insult_finding
from evaluate import STUDY_DIR, interval_allows, runs_by_method
from experiments.tune import SEED as TUNING_SEED
from experiments.ablations import ON_REQUEST, POINTS
from report.runs import served_record
from report.tables import WARNING, millions, number, signed, verdict_cell


def seed_note(summary: dict) -> str:
    n, std = summary["roc_auc"]["n"], summary["roc_auc"]["std"]
    return f" ± {number(std)} over {n} seeds" if n > 1 else ""


def best_method(seeds: dict[str, dict]) -> str:
    method = max(seeds, key=lambda m: seeds[m]["roc_auc"]["mean"])
    return (f"Best test ROC-AUC of every method, baselines included: **{method}**, "
            f"{number(seeds[method]['roc_auc']['mean'])}"
            f"{seed_note(seeds[method])}.")


def served_run(records: list[dict], best_student: dict | None = None) -> str:
    """The run the web app serves (``served_record``, as serving/runs.py ``best_run`` chooses it)."""
    best = served_record(records, best_student)
    which = (f": of the best 6-layer student's runs (`{best_student['method']}`), the one"
             if best_student and best["name"] in best_student["runs"] else ", the run")
    return (f"The web app serves `{best['name']}`{which} with the best validation macro-F1 "
            f"({number(best['validation']['macro_f1'])}; test macro-F1 "
            f"{number(best['test']['at_validation_threshold']['macro_f1'])}).")


def comparison(result: dict) -> str:
    a, b = result["a"], result["b"]
    low, high = result["ci95"]
    per_seed = ", ".join(signed(d) for d in result["per_seed_differences"].values())
    noises = ("seeds and test comments" if result["n_seeds"] > 1
              else "test comments only (a single seed, so seed noise is not covered)")
    sentence = (f"{a} − {b}, test ROC-AUC: {signed(result['difference'])} (95% CI [{signed(low)}, {signed(high)}] over "
                f"{noises}; Holm p {result['p_holm']:.3f} among {result['family_size']} {result['family']} "
                f"comparisons; per seed: {per_seed}). ")
    if result["verdict"] == "no difference detected":
        sentence += f"No difference detected; {interval_allows(result['ci95'])}."
    else:
        sentence += f"**{result['verdict']}**."
        differences = result["per_seed_differences"].values()
        if min(differences) < 0 < max(differences):
            sentence += " But the per-seed differences change sign, so the seed matters as much as the method."
    return sentence


def lora_gap(seeds: dict[str, dict]) -> str | None:
    distilled = [m for m in DISTILLED if m in seeds]
    if "lora" not in seeds or not distilled:
        return None
    best = max(distilled, key=lambda m: seeds[m]["roc_auc"]["mean"])
    lora, student = seeds["lora"]["roc_auc"]["mean"], seeds[best]["roc_auc"]["mean"]
    return (f"LoRA vs the best distilled student ({best}): test ROC-AUC {number(lora)} vs {number(student)}, "
            f"a gap of {signed(lora - student)}.")


def teacher_retention(seeds: dict[str, dict]) -> str | None:
    """(AUC − 0.5) / (AUC_teacher − 0.5): how much of the teacher's skill above chance each method keeps."""
    if "teacher" not in seeds or len(seeds) < 2:
        return None
    teacher = seeds["teacher"]["roc_auc"]["mean"]
    kept = ", ".join(f"{m} {100 * (s['roc_auc']['mean'] - 0.5) / (teacher - 0.5):.1f}%"
                     for m, s in seeds.items() if m != "teacher")
    return (f"Share of the teacher's skill above chance, (ROC-AUC − 0.5) / ({number(teacher)} − 0.5), that each "
            f"method keeps: {kept}.")


def costs(records: list[dict]) -> str | None:
    primary = {r["method"]: r for r in records if r["primary"]}
    sentences = []
    for method in ("lora", "lora-kd"):
        if method in primary and primary[method]["adapter_size_mb"] is not None:
            r = primary[method]
            sentences.append(f"{method} trains {millions(r['params']['trainable'])} parameters "
                             f"({100 * r['params']['trainable_share']:.1f}% of {millions(r['params']['total'])}); "
                             f"its adapter takes {number(r['adapter_size_mb'], 2)} MB next to "
                             f"{number(r['size_mb'], 1)} MB for the whole run folder.")
    teacher = primary.get("teacher")
    if teacher and teacher["speed"]:
        base = teacher["speed"]["batch_1"]["examples_per_s"]
        by_size: dict[int, list[str]] = {}  # the same parameter count here means the same graph
        for method, r in primary.items():
            if method != "teacher" and r["speed"]:
                by_size.setdefault(r["params"]["total"], []).append(method)
        groups = []
        for size, methods in by_size.items():
            ratios = [primary[m]["speed"]["batch_1"]["examples_per_s"] / base for m in methods]
            spread = f", ×{min(ratios):.2f} to ×{max(ratios):.2f}" if len(ratios) > 1 else ""
            groups.append(f"the {millions(size)}-parameter models ({', '.join(methods)}) ×{np.median(ratios):.2f}"
                          + spread)
        if groups:
            sentences.append(f"Speed at batch 1 relative to the teacher ({number(base, 1)} comments/s, one "
                             f"measurement each): {'; '.join(groups)}. Models of one size run the same graph, so "
                             f"the spread within a group is measurement noise, not a difference between methods.")
    return " ".join(sentences) or None


def pipeline_time(records: list[dict]) -> str | None:
    """How long each `python train.py --method ...` of the main runs took, start to finish."""
    timed = [r for r in records if r["primary"] and not is_study_run(r) and r.get("command_wall_time_s")]
    if not timed:
        return None
    each = ", ".join(f"{r['method']} {r['command_wall_time_s'] / 60:.1f}" for r in timed)
    total = sum(r["command_wall_time_s"] for r in timed) / 60
    sentence = (f"Wall time of `train.py` for the main runs, from loading the data to the saved folder "
                f"(history.json `total_time_s`), in minutes: {each}; {total:.1f} in all.")
    side_by_side = [r["method"] for r in timed if r.get("threads")]
    if side_by_side:
        sentence += (f" {', '.join(side_by_side)} trained side by side with another run (`JOBS=2`, a share of "
                     f"the cores each), so each took longer than it would alone, and `make all` took less wall "
                     f"time than this sum.")
    return sentence


def study_time(records: list[dict], evaluate_time_s: float | None = None, sessions: list[dict] = ()) -> str | None:
    """How long `make study` took beyond `make all`: its runs in runs/study/, and the evaluation.

    ``sessions`` are experiments/study.py's own wall-clock records: they include what the runs'
    histories cannot, each train.py's start-up (imports, loading the data) and the runner.
    """
    extra = [r for r in records if is_study_run(r) and r.get("command_wall_time_s")]
    if not extra:
        return None
    seeds = sorted({r["seed"] for r in records})
    methods = sorted({r["method"] for r in extra})
    minutes = [r["command_wall_time_s"] / 60 for r in extra]
    main = [r["command_wall_time_s"] / 60 for r in records if not is_study_run(r) and r.get("command_wall_time_s")]
    sentence = (f"Wall time of the multi-seed study (`make study SEEDS={len(seeds)}`, seeds {', '.join(map(str, seeds))}): "
                f"beyond the {len(main)} runs of `make all` ({sum(main):.1f} minutes, reused), its {len(extra)} runs "
                f"({', '.join(methods)}) took {sum(minutes):.1f} minutes of `train.py` in all, {min(minutes):.1f} to "
                f"{max(minutes):.1f} each")
    if evaluate_time_s is not None:
        sentence += f", and `python -m report` {evaluate_time_s / 60:.1f} minutes"
    if sessions:
        sentence += f". Measured by the study itself, {sessions_clause(sessions)}"
    return sentence + "."


def sessions_clause(sessions: list[dict]) -> str:
    """What an experiment's runner measured, session by session (experiments/runner.py ``execute_session``)."""
    return (f"start-up of every `train.py` included: {sum(session['wall_time_s'] for session in sessions) / 60:.1f} "
            f"minutes of wall time for the {sum(session['trained'] for session in sessions)} runs it trained, in "
            f"{len(sessions)} session(s)")


def is_study_run(record: dict) -> bool:
    """A run that `make study` trains beyond `make all`'s: one under runs/study/."""
    return PurePosixPath(record.get("path", "")).parent.name == STUDY_DIR


def teacher_spread(seeds: dict[str, dict]) -> str | None:
    """The teacher is trained once per seed: how far apart its own test ROC-AUCs are."""
    teacher = seeds.get("teacher")
    if not teacher or teacher["roc_auc"]["n"] < 2:
        return None
    per_seed = teacher["per_seed"]["roc_auc"]
    return (f"The teacher's own seed-to-seed spread: test ROC-AUC {number(teacher['roc_auc']['mean'])} ± "
            f"{number(teacher['roc_auc']['std'])} over {teacher['roc_auc']['n']} seeds, from "
            f"{number(min(per_seed.values()))} to {number(max(per_seed.values()))} "
            f"({', '.join(f'{number(v)} with seed {s}' for s, v in per_seed.items())}).")


def ablations_time(ablation_records: list[dict], sessions: list[dict] = ()) -> str | None:
    """How long `make ablations` took: its runs in runs/ablations/ (reused runs not counted), and its sessions.

    The runs of an on-request family (``ON_REQUEST``) are left out: `make ablations` does not train them, and
    ``family_time`` gives their own line."""
    on_request = {point.name for point in POINTS if point.family in ON_REQUEST}
    timed = [r["command_wall_time_s"] / 60 for r in ablation_records
             if r.get("command_wall_time_s") and r.get("ablation", True)  # a family's study runs are not its
             and r.get("method") not in on_request]
    if not timed and not sessions:
        return None
    sentence = "Wall time of `make ablations`"
    if timed:
        sentence += (f": its {len(timed)} runs in runs/ablations/ took {sum(timed):.1f} minutes of `train.py` in all, "
                     f"{min(timed):.1f} to {max(timed):.1f} each (the runs of `make all` and `make study` it reuses "
                     f"not counted)")
    if sessions:
        sentence += f"{';' if timed else ','} measured by the runner, {sessions_clause(sessions)}"
    return sentence + "."


def family_time(name: str, family: dict | None) -> str | None:
    """The wall time of every run of an on-request family (``experiments.ablations.ON_REQUEST``), row by row."""
    rows = [row for row in (family or {}).get("rows", []) if row.get("run_minutes")]
    if not rows:
        return None
    each = "; ".join(f"{row['method']} {', '.join(f'{m:.1f}' for m in row['run_minutes'])}" for row in rows)
    total = sum(sum(row["run_minutes"]) for row in rows)
    count = sum(len(row["run_minutes"]) for row in rows)
    return (f"Wall time of the {name} family's runs, in minutes of `train.py` per run, seed by seed: {each} "
            f"({count} runs, {total:.1f} minutes in all; a run shared by two rows counts in each).")


def ensemble_teacher_line(ensemble: dict | None, comparison: dict | None) -> str | None:
    """The teachers' ensemble, built from their averaged logits: its own test ROC-AUC, against one teacher."""
    if not ensemble:
        return None
    sentence = (f"The teachers' ensemble (the logits of {', '.join(f'`{name}`' for name in ensemble['members'])} "
                f"averaged, as the ensemble student's soft labels): test ROC-AUC "
                f"{number(ensemble['test']['at_validation_threshold']['roc_auc'])}")
    if comparison and "skipped" not in comparison:
        low, high = comparison["ci95"]
        verdict = verdict_cell(comparison).replace(ensemble["name"], "the ensemble")
        sentence += (f"; ensemble − teacher {signed(comparison['difference'])} (95% CI [{signed(low)}, {signed(high)}] "
                     f"over the teachers' seeds and the test comments): {verdict}")
    return sentence + "."


def best_student_line(best: dict | None) -> str | None:
    """The best 6-layer student (chosen on validation) against minilm, and the goal the ablations were run for."""
    if not best:
        return None
    seeds = len(best["seeds"])
    auc = best["roc_auc"]["mean"]
    sentence = (f"Best 6-layer student, chosen by mean validation ROC-AUC among the students with the most seeds "
                f"({seeds}): **{best['method']}**, test ROC-AUC {number(auc)}"
                + (f" ± {number(best['roc_auc']['std'])}" if best["roc_auc"]["std"] is not None else ""))
    versus = best.get("against_minilm")
    beats = False
    if versus and "skipped" not in versus:
        low, high = versus["ci95"]
        beats = versus["verdict"] == f"{best['method']} better"
        sentence += (f"; {best['method']} − minilm {signed(versus['difference'])} "
                     f"(95% CI [{signed(low)}, {signed(high)}], seeds and test comments): "
                     f"{verdict_cell(versus)}")
    reached = auc >= best["goal_roc_auc"]
    enough = seeds >= best.get("goal_seeds", 1)
    met = reached and beats and enough
    over = f"the mean over at least {best['goal_seeds']} seeds" if "goal_seeds" in best else "over the seeds"
    sentence += (f". The goal set for the best student, a test ROC-AUC of at least {best['goal_roc_auc']:.3f}, "
                 f"{over}, and a win over minilm (Holm p below 0.05): **{'met' if met else 'not met'}**")
    if not enough:
        sentence += f" ({seeds} seeds so far)"
    elif not reached:
        sentence += f" (short of {best['goal_roc_auc']:.3f} by {best['goal_roc_auc'] - auc:.3f})"
    elif not beats:
        sentence += " (no win over minilm detected)" if versus and "skipped" not in versus \
            else " (no minilm run to compare with)"
    return sentence + "."


def recipes(records: list[dict]) -> str | None:
    """Each method's learning rate and epochs, and whether `make tune` chose them."""
    primary = [r for r in records if r["primary"] and r.get("recipe", {}).get("lr") and r["method"] != "tfidf"]
    if not primary:
        return None
    each = ", ".join(f"{r['method']} {r['recipe']['lr']:g} × {r['recipe']['epochs']}" for r in primary)
    sources = {r["recipe"]["defaults_from"] for r in primary}
    if sources == {"train.py"}:
        source = (f"each chosen by `make tune` on validation ROC-AUC at seed {TUNING_SEED}, no seed of the study, and "
                  f"written into train.py's RECIPES table (the search and its scores: results/tuning.md)")
    elif sources == {"flags"}:
        source = "given as flags to train.py"
    else:
        source = "some from `make tune`, some hand-set or given as flags (see each run's history.json)"
    return f"Learning rate × epochs of each method: {each}; {source}."


def degenerate(records: list[dict]) -> str:
    flagged = [r["name"] for r in records if r["flags"]]
    if not flagged:
        return "No run was flagged as degenerate."
    return (f"{WARNING} **{len(flagged)} run(s) flagged as degenerate: {', '.join(flagged)}.** "
            f"Their numbers are not to be trusted; see the warnings above.")


def ensemble_comparison(ablations: dict) -> dict | None:
    """The ensemble teacher's row of the teacher-signal table: its comparison with one teacher."""
    rows = ablations.get("teacher", {}).get("rows", [])
    return next((row["comparison"] for row in rows if row["method"] == "teacher-ensemble"), None)


def runs_time(dataset: str, records: list[dict], sessions: list[dict]) -> str:
    """How long the dataset's runs took: train.py's wall time per method, and the runner's sessions."""
    timed = [r for r in records if r.get("command_wall_time_s")]
    by_method = runs_by_method(timed)
    each = ", ".join(f"{method} {np.mean([r['command_wall_time_s'] for r in runs.values()]) / 60:.1f}"
                     for method, runs in by_method.items())
    sentence = (f"Wall time of the {len(timed)} runs on {dataset}: {sum(r['command_wall_time_s'] for r in timed) / 60:.1f} "
                f"minutes of `train.py` in all; per run, the mean over seeds in minutes: {each}")
    return sentence + (f". Measured by the runner, {sessions_clause(sessions)}." if sessions else ".")


def findings(results: dict) -> list[str]:
    """One sentence (or short paragraph) per finding, in reading order: the question's comparisons first."""
    records, seeds = results["runs"], results["seeds"]
    sentences = [comparison(c) for c in results["comparisons"].values() if "skipped" not in c]
    served = served_run(records + results.get("ablation_runs", []), results.get("best_student"))
    ensemble = results.get("ensemble_teacher")
    sentences += [lora_gap(seeds), teacher_spread(seeds), best_method(seeds), served,
                  ensemble_teacher_line(ensemble, ensemble_comparison(results.get("ablations") or {})),
                  best_student_line(results.get("best_student")), bare_insult_finding(results["bare_insults"]),
                  teacher_retention(seeds), costs(records), recipes(records), pipeline_time(records),
                  study_time(records, results.get("evaluate_time_s"), results.get("study_sessions", [])),
                  ablations_time(results.get("ablation_runs", []), results.get("ablation_sessions", [])),
                  *(family_time(name, (results.get("ablations") or {}).get(name)) for name in ON_REQUEST),
                  *(runs_time(name, other["runs"], other.get("sessions", ()))
                    for name, other in (results.get("other_datasets") or {}).items()),
                  degenerate(records + results.get("ablation_runs", []))]
    return [s for s in sentences if s]
