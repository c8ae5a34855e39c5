"""How a served model computes: the ``precision`` of a ``webapp.app.Predictor``.

* ``fp32``: the reference, what evaluate.py scores with;
* ``bf16``: autocast runs the matrix multiplications in bfloat16 and keeps the weights, the
  softmax and the layer norms in fp32 (Kalamkar et al. 2019, "A Study of BFLOAT16 for Deep
  Learning Training"). bfloat16 keeps fp32's exponent range with an 8-bit mantissa, so a
  probability moves by about 1e-3 while the ranking of comments barely changes. It is fast only
  where the hardware multiplies bfloat16 natively (CPUs with AVX512-BF16 or AMX, recent GPUs);
  elsewhere it is emulated and slower than fp32, so ``resolve_precision`` falls back to fp32;
* ``onnx``: the run's ONNX export (serving/export_onnx.py) run by ONNX Runtime on the CPU, in fp32,
  behind the Predictor's usual model call (``OnnxClassifier``);
* ``int8``: the same export with dynamic int8 quantization: faster again, but its probabilities
  move by up to a few hundredths;
* ``auto`` (the default of the server and predict.py): on the CPU, int8 where the run folder
  holds a fresh export whose int8 validation ROC-AUC the export measured within 0.001 of fp32's,
  else the fp32 export, else bf16 where it is native, else fp32. The rule is "the fastest setting
  whose ROC-AUC stays within 0.001 of fp32"; bench/serving.py measures every setting side by
  side, at batch 1 and behind the web app, and says which one the rule picks on its machine.
"""
import sys
from pathlib import Path

import torch

from models.load import ModelError
from serving.export_onnx import INT8_FILE, ONNX_FILE, OnnxClassifier, int8_keeps_quality, load_onnx_classifier
from training.loop import bf16_is_native
from webapp.app import Predictor

PRECISIONS = ("auto", "fp32", "bf16", "onnx", "int8")
ONNX_PRECISIONS = ("onnx", "int8")  # run by ONNX Runtime on an export


def load_predictor(folder: str | Path, threshold: float | None = None, precision: str = "auto") -> Predictor:
    """``Predictor.from_folder`` at ``precision``: with the run's ONNX export for onnx and int8 (and auto, where
    it would work), else with its PyTorch weights, on the GPU if there is one; ``predictor.precision`` says which."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    predictor = Predictor.from_folder(folder, threshold, model=onnx_model(folder, precision, device))
    predictor.precision = resolve_precision(precision, predictor.model)
    return predictor


def onnx_model(folder: str | Path, precision: str, device: torch.device) -> OnnxClassifier | None:
    """The run's ONNX export that ``precision`` runs on ``device``, or None for its PyTorch weights.

    ``auto`` takes an export on the CPU only (ONNX Runtime runs there): the int8 one where the
    export measured its validation ROC-AUC within 0.001 of fp32's, else the fp32 one. An export that
    is present but stale, or that onnxruntime is missing for, gets a warning line on stderr that
    says why it is not used, and ``auto`` goes on with PyTorch.
    """
    folder = Path(folder)
    if precision in ONNX_PRECISIONS:
        return load_onnx_classifier(folder, precision)
    if precision == "auto" and device.type == "cpu" and (folder / ONNX_FILE).is_file():
        try:
            int8 = (folder / INT8_FILE).is_file() and int8_keeps_quality(folder)
            return load_onnx_classifier(folder, "int8" if int8 else "onnx")
        except ModelError as error:
            print(f"warning: precision auto does not use the ONNX export: {error}", file=sys.stderr)
    return None


def resolve_precision(requested: str, model: torch.nn.Module) -> str:
    """The precision ``model`` runs at: its own (``onnx`` or ``int8``) for an ``OnnxClassifier``, else ``fp32`` or ``bf16``.

    For a PyTorch model, ``auto`` and ``bf16`` become fp32 where bf16 is emulated. A ValueError
    for a setting the model cannot run: ``onnx`` and ``int8`` need an export (``load_predictor``),
    and an ONNX session runs only the graph it was made from.
    """
    if requested not in PRECISIONS:
        raise ValueError(f"unknown precision {requested!r}; choose one of {', '.join(PRECISIONS)}")
    if isinstance(model, OnnxClassifier):
        if requested not in ("auto", model.precision):
            raise ValueError(f"this ONNX Runtime session runs the {model.precision} export only, not {requested}")
        return model.precision
    if requested in ONNX_PRECISIONS:
        raise ValueError(f"precision {requested} runs a run folder's ONNX export: load it with load_predictor")
    parameter = next(model.parameters(), None)
    if requested == "fp32" or not bf16_is_native(parameter.device if parameter is not None else torch.device("cpu")):
        return "fp32"
    return "bf16"
