"""The adapter file: the tensors a LoRA run trained, as safetensors (never pickle: loading runs no code), with
metadata that records how ``inject_lora`` was called, so the same layers can be rebuilt on a fresh base model
(``serving/adapter.py`` reads it back).
"""
import json
import os
from collections.abc import Iterable
from pathlib import Path

from safetensors.torch import save_file
from torch import nn

from lora.lora import LoRALinear, lora_scaling, lora_state_dict
from training.files import write_atomically

FORMAT = "distil-vs-lora-adapter/1"


def save_adapter(path: str | os.PathLike, model: nn.Module, *, r: int, alpha: float, targets: Iterable[str],
                 base_model: str, layers: list[int] | None = None,
                 head_modules: Iterable[str] = ("classifier",), rslora: bool = False) -> Path:
    """Write the adapters and ``head_modules`` (trained in full: they started random) to one file, atomically."""
    path, head_modules = Path(path), list(head_modules)
    dropout = next(module.lora_dropout.p for module in model.modules() if isinstance(module, LoRALinear))
    metadata = {"format": FORMAT, "r": str(r), "alpha": str(alpha), "targets": json.dumps(list(targets)),
                "base_model": str(base_model), "layers": json.dumps(layers),
                "dropout": str(dropout), "head_modules": json.dumps(head_modules),
                "rslora": json.dumps(rslora), "scaling": str(lora_scaling(alpha, r, rslora))}
    state = {name: tensor.detach().cpu().contiguous() for name, tensor in lora_state_dict(model, head_modules).items()}
    write_atomically(path, lambda temporary: save_file(state, temporary, metadata=metadata))
    return path

