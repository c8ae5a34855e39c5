"""bench/make_results.py: rerunning one benchmark rewrites its section and keeps the others as they are."""
import argparse

from bench.make_results import BENCHMARKS, document, existing_sections


def test_only_rewrites_the_chosen_sections_and_keeps_the_others(tmp_path):
    args = argparse.Namespace(quick=False, threads=None)
    first = {benchmark.title: f"figures of {benchmark.name}, first run" for benchmark in BENCHMARKS}
    results = tmp_path / "RESULTS.md"
    results.write_text(document(first, args))
    assert existing_sections(results) == first

    serving = next(benchmark.title for benchmark in BENCHMARKS if benchmark.name == "serving")
    results.write_text(document({**existing_sections(results), serving: "serving, second run"}, args))
    sections = existing_sections(results)
    assert sections[serving] == "serving, second run"
    assert {title: body for title, body in sections.items() if title != serving} == \
        {title: body for title, body in first.items() if title != serving}
    headings = [line for line in results.read_text().splitlines() if line.startswith("## ")]
    assert headings == ["## Machine"] + [f"## {i}. {b.title}" for i, b in enumerate(BENCHMARKS, start=1)]


def test_a_section_of_a_removed_benchmark_is_dropped(tmp_path):
    args = argparse.Namespace(quick=False, threads=None)
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n\n## Machine\n\n| | |\n\n## 5. An old benchmark\n\nold figures\n")
    assert existing_sections(results) == {"An old benchmark": "old figures"}
    assert "An old benchmark" not in document({}, args)
