"""The walkthrough notebook (notebooks/walkthrough.ipynb), executed cell by cell as a reader runs it.

nbclient runs every cell in a fresh kernel on this test's own Python, from the notebooks/ folder
as Jupyter would. A cell that raises fails the test, and so does an ``assert`` cell that is
false: the notebook checks its own claims (copied tensors equal, B = 0 changes nothing, the
merged model computes what the adapted one does). Its parameters come from the environment.
"""
import json

import nbformat
import pytest
from ipykernel.kernelspec import write_kernel_spec
from nbclient import NotebookClient

from conftest import ROOT
from report.tables import TRAINING_LOSS

NOTEBOOK = ROOT / "notebooks" / "walkthrough.ipynb"
KERNEL = "distil-vs-lora-test"
TINY_NOTE = "TINY RANDOM BERT"
CELL_TIMEOUT_S = 600


@pytest.fixture
def kernel(tmp_path, monkeypatch) -> str:
    """A kernel spec for this very interpreter, searched first (JUPYTER_PATH), under a name of its own.

    The notebook asks for "python3", which on a given machine may be another Python without
    torch; this spec runs ``sys.executable -m ipykernel_launcher`` whatever else is installed.
    """
    write_kernel_spec(tmp_path / "jupyter" / "kernels" / KERNEL)
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    return KERNEL


def execute(kernel: str, monkeypatch, **parameters: str) -> nbformat.NotebookNode:
    """The notebook after running it with ``WALKTHROUGH_<NAME>`` environment variables set (the kernel inherits them)."""
    for name, value in parameters.items():
        monkeypatch.setenv(f"WALKTHROUGH_{name.upper()}", value)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, kernel_name=kernel, timeout=CELL_TIMEOUT_S,
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    return notebook


def text_of(notebook: nbformat.NotebookNode) -> str:
    """Everything the executed cells printed or displayed as text or Markdown."""
    pieces = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            pieces.append(output.get("text", ""))
            data = output.get("data", {})
            pieces += [data.get("text/markdown", ""), data.get("text/plain", "")]
    return "\n".join(pieces)


def images_in(notebook: nbformat.NotebookNode) -> int:
    return sum("image/png" in output.get("data", {}) for cell in notebook.cells for output in cell.get("outputs", []))


@pytest.mark.assets
def test_the_notebook_runs_on_a_tiny_random_teacher(kernel, monkeypatch, tmp_path):
    """Nothing trained yet: no runs, no results (the committed results.json may predate the report code)."""
    notebook = execute(kernel, monkeypatch, runs_dir=str(tmp_path / "no-runs"),
                       results=str(tmp_path / "no-results" / "results.json"), batch_size="8")
    text = text_of(notebook)
    assert TINY_NOTE in text, "without runs/teacher the notebook must say that its teacher is a tiny random BERT"
    assert "odd and even students differ in every one of their 6 layers" in text
    assert "results.json yet" in text and "no trained runs in" in text


@pytest.mark.assets
def test_the_notebook_runs_on_trained_runs(kernel, monkeypatch, pipeline):
    results_file = pipeline / "results" / "results.json"
    notebook = execute(kernel, monkeypatch, runs_dir=str(pipeline / "runs"), results=str(results_file), batch_size="8")
    text = text_of(notebook)
    assert f"| Model Type | {TRAINING_LOSS} | Test Set Performance |" in text
    assert images_in(notebook) == len(json.loads(results_file.read_text())["figures"])
    assert TINY_NOTE not in text and "teacher: the fine-tuned run in" in text
    verdict_header = next(line for line in text.splitlines() if line.startswith("| comment |"))
    assert all(f"`{run}`" in verdict_header for run in ("teacher", "odd", "lora")), verdict_header
    assert "| run | P(toxic) | each word's contribution |" in text, "the explanations are missing"


def test_the_committed_notebook_carries_its_outputs_from_the_real_runs():
    """It must render readably on a code host without being run, with the real teacher's numbers."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code_cells] == list(range(1, len(code_cells) + 1)), \
        "execute the notebook top to bottom in one fresh kernel before committing it"
    assert not any(output.output_type == "error" for cell in code_cells for output in cell.outputs)
    text = text_of(notebook)
    assert "teacher: the fine-tuned run in runs/teacher" in text and TINY_NOTE not in text, \
        "the committed outputs must come from the runs of `make all`, not the tiny random teacher"
    assert images_in(notebook) >= 1
    verdict_header = next(line for line in text.splitlines() if line.startswith("| comment |"))
    assert all(f"`{run}`" in verdict_header for run in ("teacher", "odd", "even", "lora", "lora-kd")), \
        "the committed outputs must show every model of `make all`: " + verdict_header
    parameters = [cell for cell in code_cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(parameters) == 1, "one cell, tagged 'parameters', sets the notebook's size"
