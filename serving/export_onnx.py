"""A run folder exported for ONNX Runtime: ``python -m serving.export_onnx runs/odd``, or by the server on first serve.

It writes three files into the run folder, next to the weights they come from:

* ``model.onnx``: the classifier as an ONNX graph, input ``input_ids`` and ``attention_mask``
  (int64, both axes dynamic: any number of comments of any length up to the model's positions),
  output ``logits``. ``--precision onnx`` (``serving/precision.py``) runs it with ONNX Runtime,
  which runs the graph without Python between the operators and fuses each GELU with its bias;
* ``model.int8.onnx``: the same graph with dynamic int8 quantization (``quantize_int8``), for
  ``--precision int8``: faster on a CPU with 8-bit dot products (VNNI), at some cost in
  accuracy, which the export measures on the run's validation split.
  bench/RESULTS.md's *serving* section measures both side by side with PyTorch in fp32 and bf16;
* ``model.onnx.json``: what they were exported from, the sha256 of ``model.safetensors``, and the
  int8 graph's validation ROC-AUC against fp32's. The exports are served only while the sha256
  still matches: a run retrained after its export is refused with one line that says to export
  it again (``check_export``), never served with old weights.

``python -m webapp`` exports the run it serves once, when it has no fresh export and the precision
may use one (``export_for_serving``), so the measured-fastest setting is what a fresh clone serves.

The exporter is ``torch.onnx.export``'s TorchScript-based one (``dynamo=False``): it needs only
the ``onnx`` package next to torch, where the newer ``torch.export``-based one also needs
``onnxscript``. It traces the model once, on an example batch, and a trace records one path
through the code. So the example is a padded batch of two comments of different lengths, and
before the file is put in place ONNX Runtime scores a batch of other lengths and sizes and must
give PyTorch's probabilities within ``EXPORT_TOLERANCE``; a failed check writes nothing. Each
file is written to a temporary name and renamed (``training/files.py``), and the record last, so
a killed export leaves the previous files or none, and never a record for files not written.
"""
import argparse
import importlib.util
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from transformers import AutoConfig
from transformers.modeling_outputs import SequenceClassifierOutput

from data import DataError
from data.load import load_splits
from embedded.pypi import sha256_of
from evaluate import dataset_args
from models.load import ModelError, load_classifier, load_tokenizer
from training.batching import encode_texts, pad_batch
from training.run_folder import read_history, trained_max_length, trained_text_prefix
from training.files import write_atomically, write_json_atomically
from training.loop import EncodedSplit, predict_logits
from training.metrics import binary_metrics

ONNX_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
EXPORT_RECORD_FILE = "model.onnx.json"
EXPORT_FILES = (ONNX_FILE, INT8_FILE, EXPORT_RECORD_FILE)  # derived from the weights: not part of a run's size or scores
INT8_AUC_TOLERANCE = 0.001  # |validation ROC-AUC of int8 - of fp32| within which --precision auto serves int8
WEIGHTS_FILE = "model.safetensors"
INPUT_NAMES = ("input_ids", "attention_mask")
OUTPUT_NAME = "logits"
OPSET = 17
EXPORT_TOLERANCE = 1e-4  # |P(toxic) from ONNX Runtime - P(toxic) from PyTorch|, both in fp32
# The versions requirements.txt pins; a setup without them is told what to install.
REQUIREMENTS = {"onnx": "onnx==1.23.2", "onnxruntime": "onnxruntime==1.31.1"}
TRACE_COMMENTS = ("you idiot", "thank you for the thoughtful reply, I learned something today")
CHECK_COMMENTS = ("thanks", "shut up, nobody cares what a pathetic loser like you thinks",
                  "I disagree with the article", "what a dumb thing to say")


def require_package(module: str, purpose: str) -> None:
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
    require_package("onnxruntime", "run an ONNX export (--precision onnx)")
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


class OnnxClassifier(torch.nn.Module):
    """An ONNX Runtime session on an export, called like the PyTorch classifier it came from.

    ``model(input_ids=..., attention_mask=...).logits`` and ``model.config`` are all that
    ``predict_logits`` asks of a model. It has no parameters (the weights are in the session),
    so the ``Predictor`` runs it on the CPU, where the session runs. ONNX Runtime's ``run`` may be
    called from several threads at once, as the web app without request batching does.
    ``precision`` is ``onnx`` for the fp32 export, ``int8`` for the quantized one.
    """

    def __init__(self, session, config, precision: str = "onnx"):
        super().__init__()
        self.session = session
        self.config = config
        self.precision = precision

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> SequenceClassifierOutput:
        return SequenceClassifierOutput(logits=onnx_logits(self.session, input_ids, attention_mask))


def kept_in_fp32(graph, config) -> list[str]:
    """The matrix products that int8 quantization leaves in fp32: the feed-forward output projections.

    Their input is the GELU output, whose few very large values (Bondarenko et al. 2021,
    "Understanding and Overcoming the Challenges of Efficient Transformer Quantization") force a
    coarse scale on a per-tensor int8 quantization of the activations, which rounds the many small
    values away. They are found by the shape of their weight, (intermediate_size, hidden_size),
    not by name, so any BERT export matches.
    """
    shapes = {initializer.name: tuple(initializer.dims) for initializer in graph.initializer}
    projection = (config.intermediate_size, config.hidden_size)
    return [node.name for node in graph.node
            if node.op_type == "MatMul" and any(shapes.get(name) == projection for name in node.input)]


def quantize_int8(source: Path, target: Path, config) -> list[str]:
    """Write ``source``'s graph with dynamic int8 quantization to ``target``; returns the nodes kept in fp32.

    Dynamic quantization (ONNX Runtime's ``quantize_dynamic``) stores each weight matrix in int8,
    with one scale per output channel, and quantizes each activation at run time with a scale
    from its own range (Jacob et al. 2018, "Quantization and Training of Neural Networks for
    Efficient Integer-Arithmetic-Only Inference"), so it needs no calibration data. The matrix
    products then run on 8-bit integers, which CPUs with VNNI multiply about twice as fast as fp32.
    Without VNNI, ONNX Runtime's u8 × s8 products can saturate their 16-bit sums, so there the weights
    keep 7 bits (``reduce_range``, as ONNX Runtime's quantization guide advises): on an AVX2-only CPU
    the tests' tiny model moved a probability by 0.11 without it, and by less than 0.1 with it.
    """
    require_package("onnx", "quantize the export (python -m serving.export_onnx)")
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    kept = kept_in_fp32(onnx.load(str(source), load_external_data=False).graph, config)
    has_vnni = getattr(torch.cpu, "_is_vnni_supported", lambda: False)()  # torch's CPUID check
    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True, nodes_to_exclude=kept,
                     reduce_range=not has_vnni)
    return kept


def export_run(folder: str | Path, validation: tuple[list[str], list[int]] | None = None) -> dict:
    """Write ``model.onnx``, ``model.int8.onnx`` and their record into the run folder ``folder``; returns the record.

    ``validation`` (texts, labels) is where the int8 graph's ROC-AUC is compared with fp32's;
    by default the run's own validation split, rebuilt from its history.json. A ModelError says
    what is missing: the folder's weights, or the onnx / onnxruntime packages.
    """
    folder = Path(folder)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise ModelError(f"{folder} has no {WEIGHTS_FILE}: pass the folder of a trained run")
    require_package("onnx", "export a run (python -m serving.export_onnx)")
    require_package("onnxruntime", "check the export against PyTorch (python -m serving.export_onnx)")
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
    int8 = {}

    def quantize_and_measure(temporary: Path) -> None:
        int8["kept_in_fp32"] = quantize_int8(folder / ONNX_FILE, temporary, model.config)
        int8["validation"] = int8_against_fp32(folder, tokenizer, model.config, temporary, validation)

    write_atomically(folder / INT8_FILE, quantize_and_measure)
    record = {"exported_from": WEIGHTS_FILE, "weights_sha256": weights_sha256, "opset": OPSET,
              "exporter": f"torch.onnx.export (TorchScript), torch {torch.__version__}", "check": checked,
              "int8": int8}
    write_json_atomically(folder / EXPORT_RECORD_FILE, record)
    return record


def int8_against_fp32(folder: Path, tokenizer, config, int8_path: Path,
                      validation: tuple[list[str], list[int]] | None) -> dict:
    """The validation ROC-AUC of the fp32 and the int8 export, or why it could not be measured.

    ``--precision auto`` serves int8 only where the two are within ``INT8_AUC_TOLERANCE``, the
    rule bench/serving.py checks on the test split. The validation split decides, so the test
    split stays unseen by every choice.
    """
    history = read_history(folder)
    if validation is None:
        try:
            split = load_splits(**dataset_args(history or {})).validation
        except (DataError, KeyError, OSError) as error:
            return {"unmeasured": f"the run's validation split could not be rebuilt ({error})"}
        validation = (split.texts, split.labels)
    texts, labels = validation
    token_ids = encode_texts(tokenizer, list(texts), trained_max_length(history), trained_text_prefix(history))
    roc_auc = {}
    for precision, path in (("onnx", folder / ONNX_FILE), ("int8", int8_path)):
        model = OnnxClassifier(onnx_session(path, torch.get_num_threads()), config, precision)
        logits = predict_logits(model, EncodedSplit(token_ids, list(labels)), tokenizer.pad_token_id,
                                torch.device("cpu"), 64)
        roc_auc[precision] = binary_metrics(list(labels), torch.softmax(logits, dim=-1)[:, 1].numpy())["roc_auc"]
    return {"comments": len(labels), "roc_auc_fp32": roc_auc["onnx"], "roc_auc_int8": roc_auc["int8"],
            "roc_auc_change": roc_auc["int8"] - roc_auc["onnx"]}


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


def check_export(folder: str | Path, file: str = ONNX_FILE) -> Path:
    """The path of ``folder``'s export ``file`` (fp32 or int8) if it was exported from the weights now in the folder.

    Otherwise a one-line ModelError: no export, no record of its source, or a stale export.
    """
    folder = Path(folder)
    again = f"python -m serving.export_onnx {folder}"
    if not (folder / file).is_file():
        raise ModelError(f"{folder} has no ONNX export ({file}): create it with `{again}`")
    try:
        exported_from = read_record(folder)["weights_sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        raise ModelError(f"{folder / file} has no readable record of the weights it was exported from "
                         f"({EXPORT_RECORD_FILE}): export it again with `{again}`") from None
    if not (folder / WEIGHTS_FILE).is_file() or sha256_of(folder / WEIGHTS_FILE) != exported_from:
        raise ModelError(f"{folder / file} is stale: it was exported from another {WEIGHTS_FILE} (the run "
                         f"was retrained after the export); export it again with `{again}`")
    return folder / file


def read_record(folder: Path) -> dict:
    return json.loads((folder / EXPORT_RECORD_FILE).read_text(encoding="utf-8"))


def int8_keeps_quality(folder: str | Path) -> bool:
    """Whether the export record measured the int8 graph's validation ROC-AUC within ``INT8_AUC_TOLERANCE`` of fp32's."""
    try:
        change = read_record(Path(folder))["int8"]["validation"]["roc_auc_change"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return isinstance(change, float) and abs(change) <= INT8_AUC_TOLERANCE


def load_onnx_classifier(folder: str | Path, precision: str = "onnx") -> OnnxClassifier:
    """The fresh ONNX export of a run folder (``onnx``: fp32, ``int8``), with torch's thread count as its intra-op threads.

    A ModelError says in one line why it cannot be served: no export, a stale one, no onnxruntime.
    The thread count is read when the session is made: set it first (``torch.set_num_threads``,
    as ``serving.server.set_serving_threads`` does).
    """
    path = check_export(folder, INT8_FILE if precision == "int8" else ONNX_FILE)
    return OnnxClassifier(onnx_session(path, torch.get_num_threads()), AutoConfig.from_pretrained(str(folder), trust_remote_code=False),
                          precision)


def export_for_serving(folder: str | Path) -> bool:
    """Whether ``folder`` has fresh exports (fp32 and int8), exporting it first when it has none or stale ones.

    What the server does once for the run it serves, and bench/serving.py before it measures. An
    export that cannot be made (onnx missing, a read-only folder, a failed check) is a warning line,
    and the caller serves with PyTorch. A folder without weights has nothing to export: False, quietly.
    """
    if not (Path(folder) / WEIGHTS_FILE).is_file():
        return False
    try:
        check_export(folder, ONNX_FILE)
        check_export(folder, INT8_FILE)
        return True
    except ModelError:
        pass
    print(f"exporting {folder} for ONNX Runtime, once (python -m serving.export_onnx {folder})", file=sys.stderr,
          flush=True)
    try:
        export_run(folder)
    except (ModelError, OSError) as error:
        print(f"warning: no ONNX export of {folder}: {error}", file=sys.stderr)
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serving.export_onnx", description=__doc__,
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
          f"Serve it with --precision onnx.")
    validation, keeps_quality = record["int8"]["validation"], int8_keeps_quality(args.folder)
    int8_mb = (args.folder / INT8_FILE).stat().st_size / 1e6
    measured = (validation["unmeasured"] if "unmeasured" in validation else
                f"validation ROC-AUC {validation['roc_auc_int8']:.4f} against fp32's {validation['roc_auc_fp32']:.4f} "
                f"on {validation['comments']} comments, {'' if keeps_quality else 'not '}within {INT8_AUC_TOLERANCE}")
    print(f"wrote {args.folder / INT8_FILE} ({int8_mb:.1f} MB; {len(record['int8']['kept_in_fp32'])} matrix "
          f"products kept in fp32): {measured}; so --precision auto serves "
          f"{'it' if keeps_quality else 'the fp32 export'}, and --precision int8 serves it in any case.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
