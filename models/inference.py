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
* ``auto`` (the default of every command): bf16 where it is native, else fp32. The rule is "the
  fastest setting whose test ROC-AUC stays within 0.001 of fp32"; bench/RESULTS.md's speed
  levers (bf16 autocast against fp32 inference on a trained student) and bench/serving.py
  (every precision at batch 1 and behind the web app) measure it.
"""
import numpy as np
import torch

from models.load import ModelError
from training.batching import encode_texts
from training.loop import EncodedSplit, predict_logits

EVAL_BATCH_SIZE = 64
PRECISIONS = ("auto", "fp32", "bf16")
TOXIC_CLASS_INDEX = 1


def bf16_is_native(device: torch.device) -> bool:
    """Whether ``device`` multiplies bfloat16 matrices in hardware (CUDA capability, CPU flags)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    # torch's own CPUID checks (Linux, Windows and macOS alike); missing in a torch without them.
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, check, lambda: False)() for check in checks)


def resolve_precision(requested: str, device: torch.device) -> str:
    """The precision to run: ``fp32`` or ``bf16``. ``auto`` and ``bf16`` become fp32 where bf16 is emulated."""
    if requested not in PRECISIONS:
        raise ValueError(f"unknown precision {requested!r}; choose one of {', '.join(PRECISIONS)}")
    if requested == "fp32" or not bf16_is_native(device):
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
    run was trained (history.json ``args``). ``precision`` is ``fp32`` or ``bf16`` (see
    ``resolve_precision``); ``progress`` draws a tqdm bar.
    """
    return probabilities_of_token_ids(model, encode_texts(tokenizer, texts, max_length, text_prefix), tokenizer,
                                      precision=precision, batch_size=batch_size, progress=progress)


def probabilities_of_token_ids(model, token_ids: list[list[int]], tokenizer, *, precision: str = "fp32",
                               batch_size: int = EVAL_BATCH_SIZE, progress: bool = False) -> np.ndarray:
    """``toxic_probabilities`` after tokenisation: for callers that tokenise under their own lock."""
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"precision must be fp32 or bf16 here, got {precision!r} (see resolve_precision)")
    if tokenizer.pad_token_id is None:
        raise ModelError("the run's tokenizer has no pad token, so comments cannot be batched")
    unlabelled = EncodedSplit(token_ids=token_ids, labels=[0] * len(token_ids))  # labels are not used
    logits = predict_logits(model, unlabelled, tokenizer.pad_token_id, model_device(model), batch_size,
                            bf16=precision == "bf16", progress=progress)
    return torch.softmax(logits, dim=-1)[:, TOXIC_CLASS_INDEX].numpy().astype(np.float64)
