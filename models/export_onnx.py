"""Export a run folder for ONNX Runtime: ``python -m models.export_onnx runs/odd``.

It writes two files into the run folder, next to the weights they come from:

* ``model.onnx``: the classifier as an ONNX graph, input ``input_ids`` and ``attention_mask``
  (int64, both axes dynamic: any number of comments of any length up to the model's positions),
  output ``logits``. ``--precision onnx`` (``models/inference.py``) runs it with ONNX Runtime,
  which fuses attention, layer norm and GELU into single kernels and runs the graph without
  Python between the operators; bench/RESULTS.md's *serving* section measures it side by side
  with PyTorch in fp32 and bf16;
* ``model.onnx.json``: what it was exported from, the sha256 of ``model.safetensors``. The
  export is served only while that still matches: a run retrained after its export is refused
  with one line that says to export it again (``check_export``), never served with old weights.

The exporter is ``torch.onnx.export``'s TorchScript-based one (``dynamo=False``): it needs only
the ``onnx`` package next to torch, where the newer ``torch.export``-based one also needs
``onnxscript``. It traces the model once, on an example batch, and a trace records one path
through the code. So the example is a padded batch of two comments of different lengths, and
before the file is put in place ONNX Runtime scores a batch of other lengths and sizes and must
give PyTorch's probabilities within ``EXPORT_TOLERANCE``; a failed check writes nothing. The file
is written to a temporary name and renamed (``training/files.py``), so a killed export leaves the
previous file or none.
"""
import argparse
import importlib.util
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

from embedded.pypi import sha256_of
from models.load import ModelError, load_classifier, load_tokenizer
from training.batching import encode_texts, pad_batch
from training.files import write_atomically, write_json_atomically

ONNX_FILE = "model.onnx"
EXPORT_RECORD_FILE = "model.onnx.json"
EXPORT_FILES = (ONNX_FILE, EXPORT_RECORD_FILE)  # derived from the weights: not part of a run's size or scores
WEIGHTS_FILE = "model.safetensors"
INPUT_NAMES = ("input_ids", "attention_mask")
OUTPUT_NAME = "logits"
OPSET = 17
EXPORT_TOLERANCE = 1e-4  # |P(toxic) from ONNX Runtime - P(toxic) from PyTorch|, both in fp32
# The versions tested with this torch (requirements-test.txt and requirements-bench.txt pin them).
REQUIREMENTS = {"onnx": "onnx==1.23.2", "onnxruntime": "onnxruntime==1.31.1"}
TRACE_COMMENTS = ("you idiot", "thank you for the thoughtful reply, I learned something today")
CHECK_COMMENTS = ("thanks", "shut up, nobody cares what a pathetic loser like you thinks",
                  "I disagree with the article", "what a dumb thing to say")


def require(module: str, purpose: str) -> None:
    """A ModelError that names the pip command when the optional ``module`` is not installed."""
    if importlib.util.find_spec(module) is None:
        raise ModelError(f"{module} is not installed: pip install {REQUIREMENTS[module]} to {purpose}")


def onnx_session(path: Path, threads: int):
    """An ONNX Runtime session on the CPU with ``threads`` intra-op threads (torch's setting, by the callers).

    ONNX Runtime's threads keep spinning after a run, waiting for the next one; between the
    requests of a web app that takes a core from the threads that parse and tokenise the next
    request (and from anything else on the machine). ``session.force_spinning_stop`` ends the
    spinning when a run returns; within a run the threads still spin between operators.
    """
    require("onnxruntime", "run an ONNX export (--precision onnx)")
    import onnxruntime
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1  # the graph is one chain of operators: nothing to run beside it
    options.add_session_config_entry("session.force_spinning_stop", "1")
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def onnx_logits(session, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The session's logits for one padded batch, as the PyTorch model's forward pass returns them."""
    inputs = {"input_ids": input_ids.numpy(), "attention_mask": attention_mask.numpy()}
    return torch.from_numpy(session.run([OUTPUT_NAME], inputs)[0])


def export_run(folder: str | Path) -> dict:
    """Write ``model.onnx`` and its record into the run folder ``folder``; returns the record.

    A ModelError says what is missing: the folder's weights, or the onnx / onnxruntime packages.
    """
    folder = Path(folder)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise ModelError(f"{folder} has no {WEIGHTS_FILE}: pass the folder of a trained run")
    require("onnx", "export a run (python -m models.export_onnx)")
    require("onnxruntime", "check the export against PyTorch (python -m models.export_onnx)")
    weights_sha256 = sha256_of(weights)  # before loading: the record names what was exported
    model = load_classifier(str(folder)).float().eval()
    tokenizer = load_tokenizer(str(folder))
    checked = {}

    def export_and_check(temporary: Path) -> None:
        example = pad_batch(encode_texts(tokenizer, list(TRACE_COMMENTS), 64), tokenizer.pad_token_id)
        with warnings.catch_warnings():
            # The tracer's notes on the deprecated exporter, data-dependent branches and indexing:
            # the check below measures whether the graph is right, on other lengths.
            warnings.simplefilter("ignore")
            torch.onnx.export(model, example, str(temporary), input_names=list(INPUT_NAMES),
                              output_names=[OUTPUT_NAME], opset_version=OPSET, dynamo=False,
                              dynamic_axes={**{name: {0: "batch", 1: "length"} for name in INPUT_NAMES},
                                            OUTPUT_NAME: {0: "batch"}})
        checked.update(check_against_torch(model, tokenizer, onnx_session(temporary, torch.get_num_threads())))

    write_atomically(folder / ONNX_FILE, export_and_check)
    record = {"exported_from": WEIGHTS_FILE, "weights_sha256": weights_sha256, "opset": OPSET,
              "exporter": f"torch.onnx.export (TorchScript), torch {torch.__version__}", "check": checked}
    write_json_atomically(folder / EXPORT_RECORD_FILE, record)
    return record


def check_against_torch(model, tokenizer, session) -> dict:
    """ONNX Runtime's P(toxic) against PyTorch's on one padded batch; a ModelError past ``EXPORT_TOLERANCE``."""
    input_ids, attention_mask = pad_batch(encode_texts(tokenizer, list(CHECK_COMMENTS), 64), tokenizer.pad_token_id)
    with torch.inference_mode():
        expected = torch.softmax(model(input_ids=input_ids, attention_mask=attention_mask).logits, dim=-1)
    exported = torch.softmax(onnx_logits(session, input_ids, attention_mask), dim=-1)
    difference = float(np.max(np.abs((exported - expected).numpy())))
    if not difference <= EXPORT_TOLERANCE:
        raise ModelError(f"the ONNX export's probabilities differ from PyTorch's by {difference:.2g} "
                         f"(more than {EXPORT_TOLERANCE:g}); nothing was written")
    return {"comments": len(CHECK_COMMENTS), "max_probability_difference": difference}


def check_export(folder: str | Path) -> Path:
    """The path of ``folder``'s ONNX export if it was exported from the weights now in the folder.

    Otherwise a one-line ModelError: no export, no record of its source, or a stale export.
    """
    folder = Path(folder)
    again = f"python -m models.export_onnx {folder}"
    if not (folder / ONNX_FILE).is_file():
        raise ModelError(f"{folder} has no ONNX export ({ONNX_FILE}): create it with `{again}`")
    try:
        exported_from = json.loads((folder / EXPORT_RECORD_FILE).read_text(encoding="utf-8"))["weights_sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        raise ModelError(f"{folder / ONNX_FILE} has no readable record of the weights it was exported from "
                         f"({EXPORT_RECORD_FILE}): export it again with `{again}`") from None
    if not (folder / WEIGHTS_FILE).is_file() or sha256_of(folder / WEIGHTS_FILE) != exported_from:
        raise ModelError(f"{folder / ONNX_FILE} is stale: it was exported from another {WEIGHTS_FILE} (the run "
                         f"was retrained after the export); export it again with `{again}`")
    return folder / ONNX_FILE


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.export_onnx", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="run folder (a save_pretrained folder such as runs/odd)")
    args = parser.parse_args(argv)
    try:
        record = export_run(args.folder)
    except ModelError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    size_mb = (args.folder / ONNX_FILE).stat().st_size / 1e6
    print(f"wrote {args.folder / ONNX_FILE} ({size_mb:.1f} MB) from {WEIGHTS_FILE} "
          f"(sha256 {record['weights_sha256'][:12]}); ONNX Runtime agrees with PyTorch within "
          f"{record['check']['max_probability_difference']:.1g} on {record['check']['comments']} comments. "
          f"Serve it with --precision onnx (or auto).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
