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

from lora.lora import LoRAError, LoRALinear, lora_scaling, lora_state_dict, resolve_targets, target_matches
from training.files import write_atomically

FORMAT = "distil-vs-lora-adapter/1"


def save_adapter(path: str | os.PathLike, model: nn.Module, *, r: int, alpha: float, targets: Iterable[str],
                 base_model: str, layers: list[int] | None = None,
                 head_modules: Iterable[str] = ("classifier",), rslora: bool = False) -> Path:
    """Write the adapters and ``head_modules`` (trained in full: they started random) to one file, atomically."""
    path, targets, head_modules = Path(path), resolve_targets(targets), list(head_modules)
    # The metadata must say what the file computes: every LoRA layer must be as it claims.
    wrapped = [(name, module) for name, module in model.named_modules() if isinstance(module, LoRALinear)]
    if not wrapped:
        raise LoRAError("the model has no LoRA layers (already merged?); save the adapter before merge_lora")
    for name, layer in wrapped:
        if not any(target_matches(name, target) for target in targets) \
                or (layer.r, layer.alpha, layer.rslora) != (r, alpha, rslora):
            raise LoRAError(f"save_adapter was told r={r}, alpha={alpha}, rslora={rslora}, targets={list(targets)}, "
                            f"but the LoRA layer {name} has r={layer.r}, alpha={layer.alpha}, rslora={layer.rslora}")
    metadata = {"format": FORMAT, "r": str(r), "alpha": str(alpha), "targets": json.dumps(list(targets)),
                "base_model": str(base_model), "layers": json.dumps(layers),
                "dropout": str(wrapped[0][1].lora_dropout.p), "head_modules": json.dumps(head_modules),
                "rslora": json.dumps(rslora), "scaling": str(lora_scaling(alpha, r, rslora))}
    state = {name: tensor.detach().cpu().contiguous() for name, tensor in lora_state_dict(model, head_modules).items()}
    write_atomically(path, lambda temporary: save_file(state, temporary, metadata=metadata))
    return path

