"""Regenerating the results section of README.md between two HTML comment markers.

Only the text between the markers is replaced, so the hand-written rest of the README is never
touched, and re-running the evaluation refreshes the numbers instead of appending a copy.
"""
from pathlib import Path

from training.files import write_text_atomically

START = "<!-- results:start -->"
END = "<!-- results:end -->"


def replace_results_section(readme: str, section: str) -> str | None:
    """The README text with ``section`` between the markers, or None if the markers are missing."""
    start, end = readme.find(START), readme.find(END)
    if start < 0 or end < start:
        return None
    return f"{readme[:start + len(START)]}\n{section.strip()}\n{readme[end:]}"


def update_readme(path: Path, section: str) -> str:
    """Write the new section into the README at ``path``; returns what happened, for the console."""
    path = Path(path)
    if not path.is_file():
        return f"{path} does not exist; README not updated"
    updated = replace_results_section(path.read_text(encoding="utf-8"), section)
    if updated is None:
        return f"{path} has no {START} ... {END} markers; README left unchanged"
    write_text_atomically(path, updated)
    return f"updated the results section of {path}"
