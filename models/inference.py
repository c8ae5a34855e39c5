"""Toxic probabilities of a classifier on a list of comments: the one inference path of the project.

``evaluate.py`` (the test scores), ``predict.py`` (bulk scoring) and the web app
(``webapp/predict.py``) all call ``toxic_probabilities``, so a comment gets the same probability
from each of them. It reuses the training loop's own prediction path
(``training.loop.predict_logits``): comments sorted by length and cut into batches, each padded
only to its longest member, under ``torch.inference_mode()`` with ``model.eval()`` (dropout
off). The validation numbers of training are computed the same way.

**Precision** is a setting of this path:

* ``fp32``: the reference;
* ``bf16``: autocast runs the matrix multiplications in bfloat16 and keeps the weights, the
  softmax and the layer norms in fp32 (Kalamkar et al. 2019, "A Study of BFLOAT16 for Deep
  Learning Training"). bfloat16 keeps fp32's exponent range with an 8-bit mantissa, so a
  probability moves by about 1e-3 while the ranking of comments barely changes;
  bench/serving.py measures both. It is fast only where the hardware multiplies bfloat16
  natively (CPUs with AVX512-BF16 or AMX, recent GPUs); elsewhere it is emulated and slower
  than fp32, so ``resolve_precision`` falls back to fp32 there;
* ``onnx``: the run's ONNX export (``python -m models.export_onnx runs/odd``, which says why an
  export is checked and when it is refused) run by ONNX Runtime on the CPU, in fp32.
  ``OnnxClassifier`` wraps the session so that it is called like the PyTorch model, and the
  batching above applies to it unchanged. onnxruntime (and onnx, for the export) are optional
  packages: without them this setting says what to install;
* ``int8``: the same export with dynamic int8 quantization (``models.export_onnx.quantize_int8``),
  run by ONNX Runtime: faster again, but its probabilities move by up to a few hundredths;
* ``auto`` (the default of every command but ``evaluate.py``, which scores in fp32): on the CPU,
  int8 where the run folder holds a fresh export whose int8 validation ROC-AUC the export
  measured within 0.001 of fp32's, else the fp32 export, else bf16 where it is native, else
  fp32. The rule is "the fastest setting whose ROC-AUC stays within 0.001 of fp32";
  bench/serving.py measures every setting side by side, at batch 1 and behind the web app, with
  the test ROC-AUC of each, and says which one the rule picks on the machine it runs on.
"""
import sys
from pathlib import Path

import numpy as np
import torch

from models.export_onnx import INT8_FILE, ONNX_FILE, OnnxClassifier, int8_keeps_quality, load_onnx_classifier
from models.load import ModelError, load_classifier
from training.batching import encode_texts
from training.loop import EncodedSplit, predict_logits

EVAL_BATCH_SIZE = 64
PRECISIONS = ("auto", "fp32", "bf16", "onnx", "int8")
ONNX_PRECISIONS = ("onnx", "int8")  # run by ONNX Runtime on an export
TOXIC_CLASS_INDEX = 1


def load_for_precision(folder: str | Path, precision: str, device: torch.device) -> torch.nn.Module:
    """The model of a run folder that runs ``precision``: an ONNX export for ``onnx`` and ``int8``, else the PyTorch model.

    ``auto`` takes an export where it would work, on the CPU only (ONNX Runtime runs there): the
    int8 one where the export measured its validation ROC-AUC within 0.001 of fp32's, else the
    fp32 one. An export that is present but stale, or that onnxruntime is missing for, gets a
    warning line on stderr that says why it is not used, and ``auto`` goes on with PyTorch.
    """
    folder = Path(folder)
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if precision in ONNX_PRECISIONS:
        return load_onnx_classifier(folder, precision)
    if precision == "auto" and device.type == "cpu" and (folder / ONNX_FILE).is_file():
        try:
            int8 = (folder / INT8_FILE).is_file() and int8_keeps_quality(folder)
            return load_onnx_classifier(folder, "int8" if int8 else "onnx")
        except ModelError as error:
            print(f"warning: precision auto does not use the ONNX export: {error}", file=sys.stderr)
    return load_classifier(str(folder), num_labels=2).to(device)


def bf16_is_native(device: torch.device) -> bool:
    """Whether ``device`` multiplies bfloat16 matrices in hardware (CUDA capability, CPU flags)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    # torch's own CPUID checks (Linux, Windows and macOS alike); missing in a torch without them.
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, check, lambda: False)() for check in checks)


def resolve_precision(requested: str, model: torch.nn.Module) -> str:
    """The precision ``model`` runs at: its own (``onnx`` or ``int8``) for an ``OnnxClassifier``, else ``fp32`` or ``bf16``.

    For a PyTorch model, ``auto`` and ``bf16`` become fp32 where bf16 is emulated. A ValueError
    for a setting the model cannot run: ``onnx`` and ``int8`` need an export
    (``load_for_precision``), and an ONNX session runs only the graph it was made from.
    """
    if requested not in PRECISIONS:
        raise ValueError(f"unknown precision {requested!r}; choose one of {', '.join(PRECISIONS)}")
    if isinstance(model, OnnxClassifier):
        if requested not in ("auto", model.precision):
            raise ValueError(f"this ONNX Runtime session runs the {model.precision} export only, not {requested}")
        return model.precision
    if requested in ONNX_PRECISIONS:
        raise ValueError(f"precision {requested} runs a run folder's ONNX export: load it with load_for_precision")
    if requested == "fp32" or not bf16_is_native(model_device(model)):
        return "fp32"
    return "bf16"


def model_device(model: torch.nn.Module) -> torch.device:
    """Where the model's weights are (the CPU for a model without any)."""
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def toxic_probabilities(model, tokenizer, texts: list[str], max_length: int, *, precision: str = "fp32",
                        batch_size: int = EVAL_BATCH_SIZE, progress: bool = False, text_prefix: str = "") -> np.ndarray:
    """P(toxic) for each comment, in the order given: softmax over the two logits, class 1.

    Comments are truncated to ``max_length`` tokens and prefixed with ``text_prefix``, as the
    run was trained (history.json ``args``). ``precision`` is ``fp32`` or ``bf16`` for a PyTorch
    model, the session's own for an ``OnnxClassifier`` (see ``resolve_precision``); ``progress`` draws a
    tqdm bar.
    """
    return probabilities_of_token_ids(model, encode_texts(tokenizer, texts, max_length, text_prefix), tokenizer,
                                      precision=precision, batch_size=batch_size, progress=progress)


def probabilities_of_token_ids(model, token_ids: list[list[int]], tokenizer, *, precision: str = "fp32",
                               batch_size: int = EVAL_BATCH_SIZE, progress: bool = False) -> np.ndarray:
    """``toxic_probabilities`` after tokenisation: for callers that tokenise under their own lock."""
    expected = (model.precision,) if isinstance(model, OnnxClassifier) else ("fp32", "bf16")
    if precision not in expected:
        raise ValueError(f"precision {precision!r} does not fit a {type(model).__name__} (see resolve_precision)")
    if tokenizer.pad_token_id is None:
        raise ModelError("the run's tokenizer has no pad token, so comments cannot be batched")
    unlabelled = EncodedSplit(token_ids=token_ids, labels=[0] * len(token_ids))  # labels are not used
    logits = predict_logits(model, unlabelled, tokenizer.pad_token_id, model_device(model), batch_size,
                            bf16=precision == "bf16", progress=progress)
    return torch.softmax(logits, dim=-1)[:, TOXIC_CLASS_INDEX].numpy().astype(np.float64)
