"""Write the generated sections of README.md and docs/ from results.json, with or without runs on disk.

    python -m report.render            # results/results.json -> README.md, docs/ and results/results.md
    python -m report.render --results /tmp/smoke/results/results.json --readme /tmp/smoke/README.md

``evaluate.py`` calls ``render_documents`` at its end with the numbers it has just measured, and
this command calls it with the numbers it reads back from results.json: one function, so the
README after an evaluation and the README regenerated from the committed results cannot differ.

Each section goes between its markers (``report/readme.py``) in the file that holds it:

- README.md: the answer (``answer``) and the reading path (``reading-path``);
- docs/study.md: the model comparison, findings, seed study, paired comparisons, every run, figures;
- docs/ablations.md: one table per ablation question;
- docs/behaviour.md: the behavioural suite's pass rates;
- docs/serving.md: the run the web app serves;
- docs/datasets.md: the question on a second dataset, and how the models travel between the two.
"""
import argparse
import json
import os
from pathlib import Path

from report.datasets import other_dataset_markdown
from report.document import (ablations_markdown, behaviour_markdown, folder_prefix, joined, results_document,
                             served_run_markdown, study_markdown)
from report.reading_path import update_reading_path
from report.readme import ANSWER, answer_markdown, update_marked_section
from training.files import write_text_atomically

TUNING_FILE = "tuning.json"  # what `make tune` searched, beside results.json


def relative_folder(folder: Path, document: Path) -> str:
    """``folder`` as a link from ``document``, in forward slashes whatever the platform."""
    return Path(os.path.relpath(Path(folder).resolve(), Path(document).resolve().parent)).as_posix()


def read_tuning(results_dir: Path) -> dict | None:
    """The tuning search of `make tune`, if it ran: the answer's caveat names LoRA's place in it."""
    path = Path(results_dir) / TUNING_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def docs_sections(results: dict, results_dir: Path, docs_dir: Path) -> list[tuple[Path, str, str]]:
    """(file, section name, generated text) for every generated section of docs/."""
    def prefix_for(name: str) -> str:
        return relative_folder(results_dir, docs_dir / name)

    return [
        (docs_dir / "study.md", "study", study_markdown(results, image_dir=prefix_for("study.md"), heading="##")),
        (docs_dir / "ablations.md", "ablations", joined(ablations_markdown(results, heading="##"))),
        (docs_dir / "behaviour.md", "behaviour",
         joined(behaviour_markdown(results, heading="##", prefix=folder_prefix(prefix_for("behaviour.md"))))),
        (docs_dir / "serving.md", "serving", served_run_markdown(results)),
        (docs_dir / "datasets.md", "datasets", joined(other_dataset_markdown(results, heading="##") or [
            "No run on a second dataset has been evaluated yet: `make second-dataset` trains them, and "
            "`python -m report` then writes their tables here."])),
    ]


def render_documents(results: dict, readme: Path, results_dir: Path, docs_dir: Path | None = None) -> list[str]:
    """Write every generated section; returns one line per file section, saying what happened.

    ``results_dir`` is where results.json and the figures are; ``docs_dir`` defaults to docs/ beside the README.
    """
    readme = Path(readme)
    docs_dir = readme.parent / "docs" if docs_dir is None else Path(docs_dir)
    messages = [update_marked_section(readme, ANSWER, answer_markdown(results, read_tuning(results_dir))),
                update_reading_path(readme)]
    messages += [update_marked_section(path, name, text) for path, name, text in
                 docs_sections(results, Path(results_dir), docs_dir)]
    return messages


def main(argv: list[str] | None = None) -> list[str]:
    parser = argparse.ArgumentParser(prog="python -m report.render", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=Path("results/results.json"),
                        help="the report written by python -m report (default: results/results.json)")
    parser.add_argument("--readme", type=Path, default=Path("README.md"), help="the README (default: README.md)")
    parser.add_argument("--docs", type=Path, help="the docs folder (default: docs/ beside the README)")
    args = parser.parse_args(argv)
    if not args.results.is_file():
        parser.error(f"{args.results} does not exist: `python -m report` writes it")
    results = json.loads(args.results.read_text(encoding="utf-8"))
    messages = render_documents(results, args.readme, args.results.parent, args.docs)
    write_text_atomically(args.results.parent / "results.md", results_document(results))
    messages.append(f"rewrote {args.results.parent / 'results.md'}")
    for message in messages:
        print(message)
    return messages


if __name__ == "__main__":
    main()
