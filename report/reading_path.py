"""The core files, in the order a newcomer reads them, written down once.

The README's reading path is rendered from ``CORE_FILES`` with each file's line count read from
disk (as ``wc -l`` counts them), so the list and its sizes cannot drift from the code. It is the
one list of core files: anything else that needs it (a check of the core's imports) imports it from here.
"""
from pathlib import Path

from report.readme import update_marked_section
from report.tables import markdown_table

READING_PATH = "reading-path"
MISSING = "–"

# (path from the repository root, what the file holds), in reading order.
CORE_FILES: list[tuple[str, str]] = [
    ("train.py", "one training run, top to bottom: arguments, data, model, loss, loop, save"),
    ("lora/lora.py", "the LoRA layer, its injection into a model, the merge back into plain weights, the adapter file"),
    ("distill/student.py", "a 6-layer student built from chosen teacher layers (odd or even)"),
    ("distill/loss.py", "the distillation loss: cross-entropy, T²·KL on softened logits, cosine"),
    ("distill/teacher_logits.py", "the frozen teacher's logits, computed once per training example"),
    ("data/load.py", "a dataset named by one string, as train / validation / test splits"),
    ("data/splits.py", "the stratified validation split, and a test split where the data has none"),
    ("data/labels.py", "a dataset's labels mapped to toxic / not toxic"),
    ("data/assets.py", "where the embedded teacher and data come from, one call each"),
    ("training/loop.py", "the training loop every method shares"),
    ("training/batching.py", "length-bucketed batches with dynamic padding"),
    ("training/metrics.py", "ROC-AUC, F1 and the decision threshold chosen on validation"),
    ("training/run_folder.py", "a run's folder: the saved model and history.json, a failed run kept apart"),
    ("training/files.py", "atomic writes"),
    ("training/distributed.py", "data-parallel training under torchrun"),
    ("models/load.py", "a model named by one string, loaded with clear errors"),
    ("evaluate.py", "every run scored on the test split, with tables and paired intervals"),
    ("webapp/app.py", "the web app around one predict function"),
]


def line_count(path: Path) -> int | None:
    """The file's newline count, as ``wc -l`` reports it; None for a file that does not exist (yet)."""
    return path.read_bytes().count(b"\n") if path.is_file() else None


def reading_path_table(root: Path) -> str:
    """The core files in reading order with their line counts, and the total of those that exist."""
    counts = [line_count(Path(root) / path) for path, _ in CORE_FILES]
    rows = [[str(step), f"[`{path}`]({path})", description, MISSING if count is None else str(count)]
            for step, ((path, description), count) in enumerate(zip(CORE_FILES, counts), start=1)]
    missing = sum(count is None for count in counts)
    total = str(sum(count for count in counts if count is not None))
    rows.append(["", "**Total**", f"{len(CORE_FILES)} files" + (f", {missing} not written yet" if missing else ""),
                 f"**{total}**"])
    return markdown_table(["#", "File", "What it holds", "Lines"], rows)


def update_reading_path(readme: Path) -> str:
    """Rewrite the README's reading path, counting the lines of the files beside it."""
    readme = Path(readme)
    return update_marked_section(readme, READING_PATH, reading_path_table(readme.parent))
