"""The README leads with the answer, and every generated number in it and in docs/ is rendered from results.json.

The committed README and docs/ are checked against what ``report/render.py`` makes of the committed
results/results.json, so a hand edit of a generated section, or a change of the report code that
was not rendered, fails here; the reading path is checked against the core files' current lengths.
"""
import json
import re
import shutil

import pytest

from conftest import ROOT
from report import render
from report.reading_path import CORE_FILES, MISSING, READING_PATH, line_count, reading_path_table
from report.readme import ANSWER, answer_markdown, markers
from report.tables import signed

README = ROOT / "README.md"
DOCS = ROOT / "docs"
RESULTS = ROOT / "results"
FIRST_SCREEN = 60
MAX_LINES = 250
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")  # a Markdown link's target, its #anchor dropped


def marked_section(text: str, name: str) -> str:
    start, end = markers(name)
    assert start in text and end in text, f"the {name} markers are missing"
    return text[text.index(start) + len(start):text.index(end)].strip()


def committed_results() -> dict:
    return json.loads((RESULTS / "results.json").read_text(encoding="utf-8"))


def test_the_readme_is_short_and_its_first_screen_holds_the_answer_and_the_reading_path():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_LINES
    first_screen = "\n".join(lines[:FIRST_SCREEN])
    for name in (ANSWER, READING_PATH):
        assert markers(name)[1] in first_screen, f"the {name} section must end within the first {FIRST_SCREEN} lines"
    for command in ("make all", "make test", "python train.py --method lora", "python evaluate.py", "python -m webapp"):
        assert command in first_screen


def test_the_reading_path_lists_the_core_files_in_order_with_their_current_line_counts():
    rows = [line.split(" | ") for line in marked_section(README.read_text(encoding="utf-8"), READING_PATH).splitlines()
            if re.match(r"\| \d+ \|", line)]
    assert [re.search(r"`(.+?)`", row[1]).group(1) for row in rows] == [path for path, _ in CORE_FILES]
    for row, (path, _) in zip(rows, CORE_FILES):
        count = line_count(ROOT / path)
        assert row[-1].rstrip(" |") == (MISSING if count is None else str(count)), \
            f"{path}'s line count is stale: run `python -m report.render`"


def test_a_missing_core_file_counts_as_a_dash_and_the_total_sums_the_others(tmp_path):
    (tmp_path / "train.py").write_text("one\ntwo\nthree\n")
    (tmp_path / "evaluate.py").write_text("one\n")
    table = reading_path_table(tmp_path)
    assert "| [`train.py`](train.py) |" in table and table.splitlines()[2].endswith("| 3 |")
    assert f"| {MISSING} |" in table
    assert table.splitlines()[-1].endswith(f"{len(CORE_FILES) - 2} not written yet | **4** |")


def test_every_file_the_readme_and_docs_link_to_exists():
    documents = [README, *sorted(DOCS.glob("*.md"))]
    assert {path.name for path in documents} >= {"study.md", "ablations.md", "behaviour.md", "serving.md",
                                                  "robustness.md", "scaling.md", "your-data.md", "dependencies.md"}
    readme_links = set(LINK.findall(README.read_text(encoding="utf-8")))
    assert {f"docs/{path.name}" for path in DOCS.glob("*.md")} <= readme_links, "the README links every docs page"
    for document in documents:
        for target in LINK.findall(document.read_text(encoding="utf-8")):
            if "://" not in target:
                assert (document.parent / target).exists(), f"{document.name} links to a missing {target}"


def test_the_committed_readme_and_docs_are_the_rendered_results():
    results = committed_results()
    expected = [(README, ANSWER, answer_markdown(results, render.read_tuning(RESULTS))),
                (README, READING_PATH, reading_path_table(ROOT)),
                *render.docs_sections(results, RESULTS, DOCS)]
    for path, name, text in expected:
        assert marked_section(path.read_text(encoding="utf-8"), name) == text.strip(), \
            f"the {name} section of {path.name} is not what `python -m report.render` writes"


def test_no_words_that_only_make_sense_inside_the_projects_history():
    """The generated sentences reach the README and docs/, so reading those covers the report's wording too."""
    for path in (README, *DOCS.glob("*.md"), ROOT / "notebooks" / "walkthrough.ipynb"):
        text = path.read_text(encoding="utf-8")
        for phrase in ("Issue 12", "issue 12", "seed 004", "course notebook", "course's"):
            assert phrase not in text, f"{path.name} says {phrase!r}"


# ------------------------------------------------------------------ the answer, rendered from a tiny results dict

def summary(mean, std, seeds=(1, 42)):
    return {"seeds": list(seeds), "roc_auc": {"mean": mean, "std": std, "n": len(seeds)}}


def stored(a, b, difference, low, high, per_seed, verdict, p_holm):
    return {"a": a, "b": b, "difference": difference, "ci95": [low, high], "verdict": verdict, "p_holm": p_holm,
            "family": "primary", "family_size": 3, "per_seed_differences": dict(zip(("1", "42"), per_seed))}


TINY = {
    "seeds": {"teacher": summary(0.95, 0.004), "odd": summary(0.94, 0.002), "even": summary(0.93, 0.006),
              "lora": summary(0.92, 0.001), "minilm": summary(0.96, 0.003)},
    "comparisons": {"odd_vs_even": stored("odd", "even", 0.01, -0.004, 0.021, [0.02, -0.001],
                                          "no difference detected", 0.4),
                    "lora_vs_odd": stored("lora", "odd", -0.02, -0.031, -0.012, [-0.015, -0.025], "odd better", 0.03),
                    "lora_vs_even": stored("lora", "even", -0.01, -0.018, 0.003, [-0.01, -0.01],
                                           "no difference detected", 0.2),
                    "lora-kd_vs_lora": {"skipped": "no lora-kd run"}},
    "runs": [{"method": "lora", "primary": True, "recipe": {"lr": 0.002}}],
    "best_student": None,
}
TUNING = {"seed": 0, "chosen": {"lora": {"interior": False, "at_edge": ["highest lr"]},
                                 "odd": {"interior": True, "at_edge": []}}}


def test_the_answer_table_flips_a_stored_lora_minus_method_into_method_minus_lora():
    table = answer_markdown(TINY, TUNING)
    odd = next(line for line in table.splitlines() if line.startswith("| `odd` |"))
    assert odd.endswith("| 1, 42 | 0.940 ± 0.002 | +0.020 | [+0.012, +0.031] | "
                        "odd better (Holm p 0.030, primary, 3 compared) |")
    even = next(line for line in table.splitlines() if line.startswith("| `even` |"))
    assert even.endswith("| +0.010 | [−0.003, +0.018] | no difference detected; the interval allows ±0.018 "
                         "(Holm p 0.200, primary, 3 compared) |")
    assert "| `teacher` |" in table and "| not compared |" in table
    assert "| `lora` | LoRA fine-tuning, merged | 1, 42 | 0.920 ± 0.001 | reference |" in table
    assert "`lora-kd`" not in table, "a method without seeds has no row"


def test_the_verdict_names_the_winner_and_never_calls_an_interval_across_zero_an_effect():
    words = answer_markdown(TINY, TUNING).split("\n\n")[-1]
    assert words.startswith(f"**Verdict**, on test ROC-AUC: odd beats lora (odd − lora {signed(0.02)}, "
                            "95% CI [+0.012, +0.031], Holm p 0.030, on every seed); no difference detected between "
                            "even and lora")
    assert "no difference detected between odd and even (odd − even +0.010, 95% CI [−0.004, +0.021], Holm p 0.400: " \
           "the interval allows ±0.021)" in words
    assert "scores 0.960 ± 0.003, higher than every student trained here" in words
    assert "chosen by `make tune` on validation at seed 0, which no evaluation run uses" in words
    assert "still at an edge when the search stopped: lora (at its highest lr), so read those gaps as bounds" in words
    assert "no effect" not in words


def test_the_caveats_follow_the_numbers_not_the_words():
    inside_grid = answer_markdown(TINY, {"seed": 0, "chosen": {"lora": {"interior": True, "at_edge": []}}})
    assert "each grid grown until its best was inside it (" in inside_grid and "bounds" not in inside_grid
    weaker_baseline = {**TINY, "seeds": {**TINY["seeds"], "minilm": summary(0.93, 0.003)}}
    assert "higher than every student" not in answer_markdown(weaker_baseline)
    ensemble_teacher = {"rows": [{"method": "teacher-ensemble", "roc_auc": {"mean": 0.99}}]}
    assert "higher than every student" in answer_markdown({**TINY, "ablations": {"teacher": ensemble_teacher}}), \
        "a teacher above minilm is no student"
    better_ablation = {"rows": [{"method": "layers-bottom", "roc_auc": {"mean": 0.97}}]}
    assert "higher than every student" not in answer_markdown({**TINY, "ablations": {"layers": better_ablation}})
    assert "make tune" not in answer_markdown(TINY), "without tuning.json nothing is said about the grid"


def test_runs_trained_with_another_recipe_than_the_tuned_one_are_named_instead_of_the_grid():
    results = {**TINY, "runs": [{"method": "lora", "primary": True, "recipe": {"lr": 0.001, "epochs": 6}},
                                {"method": "odd", "primary": True, "recipe": {"lr": 5e-5, "epochs": 3}}]}
    tuning = {**TUNING, "chosen": {"lora": {"lr": 0.002, "epochs": 10, "interior": True, "at_edge": []},
                                   "odd": {"lr": 5e-5, "epochs": 3, "interior": True, "at_edge": []}}}
    words = answer_markdown(results, tuning).split("\n\n")[-1]
    assert "other recipes than those `make tune` now chooses" in words and "lora 0.001 × 6 → 0.002 × 10" in words
    assert "odd 5e-05" not in words and "upper bound" not in words
    same = {**results, "runs": [{"method": "lora", "primary": True, "recipe": {"lr": 0.002, "epochs": 10}}]}
    assert "now chooses" not in answer_markdown(same, tuning)


def test_python_m_report_render_writes_the_committed_answer_from_results_json_alone(tmp_path, capsys):
    shutil.copy(README, tmp_path / "README.md")
    shutil.copytree(DOCS, tmp_path / "docs")
    (tmp_path / "results").mkdir()
    for name in ("results.json", render.TUNING_FILE):  # no runs, no figures: the report alone
        shutil.copy(RESULTS / name, tmp_path / "results" / name)
    messages = render.main(["--results", str(tmp_path / "results" / "results.json"),
                            "--readme", str(tmp_path / "README.md")])
    assert len(messages) == 8 and all(message.startswith("updated the ") for message in messages[:7]), messages
    assert messages[7] == f"rewrote {tmp_path / 'results' / 'results.md'}"
    assert (tmp_path / "results" / "results.md").read_text() == (RESULTS / "results.md").read_text()
    assert marked_section((tmp_path / "README.md").read_text(), ANSWER) == marked_section(README.read_text(), ANSWER)
    for page in ("study.md", "ablations.md", "behaviour.md", "serving.md", "datasets.md"):
        assert (tmp_path / "docs" / page).read_text() == (DOCS / page).read_text()
    with pytest.raises(SystemExit):
        render.main(["--results", str(tmp_path / "missing.json")])
    assert "does not exist" in capsys.readouterr().err
