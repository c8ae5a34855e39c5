"""The adapter file: the tensors a LoRA run trained, as safetensors (never pickle: loading runs no code), with
metadata that records how ``inject_lora`` was called, so the same layers can be rebuilt on a fresh base model.
"""
import json
import os
from collections.abc import Iterable
from pathlib import Path

from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor, nn

from lora.lora import (LORA_PARAMETERS, LoRAError, LoRALinear, checked_module_names, inject_lora, lora_scaling,
                       lora_state_dict, resolve_targets, target_matches)
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


def load_adapter(path: str | os.PathLike) -> tuple[dict[str, Tensor], dict]:
    """Read an adapter file: (tensors, the metadata ``save_adapter`` wrote, less the scaling)."""
    if not (path := Path(path)).is_file():
        raise LoRAError(f"no adapter file at {path}")
    try:
        with safe_open(path, framework="pt") as file:
            raw = file.metadata() or {}
            state = {name: file.get_tensor(name) for name in file.keys()}
    except SafetensorError as error:
        raise LoRAError(f"{path} is not a readable safetensors file, perhaps truncated or corrupt ({error})") from error
    if raw.get("format") != FORMAT:
        raise LoRAError(f"{path} is not a distil-vs-lora adapter (format {raw.get('format')!r}, not {FORMAT!r})")
    read_back = {"r": int, "alpha": float, "targets": json.loads, "base_model": str, "layers": json.loads,
                 "dropout": float, "head_modules": json.loads, "rslora": json.loads}
    try:
        return state, {"format": FORMAT} | {key: read(raw[key]) for key, read in read_back.items()}
    except (KeyError, ValueError) as error:  # json.JSONDecodeError is a ValueError
        raise LoRAError(f"{path}: the adapter metadata is incomplete or malformed ({error!r})") from error


def apply_adapter(model: nn.Module, state: dict[str, Tensor], meta: dict) -> nn.Module:
    """Rebuild the recorded LoRA layers on a fresh base ``model`` and load the adapter and head tensors into them."""
    inject_lora(model, meta["targets"], meta["r"], meta["alpha"], meta["dropout"], meta["rslora"])
    load_lora_state_dict(model, state, meta["head_modules"])
    return model


def load_lora_state_dict(model: nn.Module, state: dict[str, Tensor],
                         head_modules: Iterable[str] = ("classifier",)) -> None:
    """Load adapter tensors into an injected model: every A, B and head tensor must be there, in the model's shape."""
    own, head_modules = model.state_dict(), checked_module_names(model, head_modules)
    absent = sorted(name for name in own if name not in state)
    problems = {"keys the model lacks": sorted(name for name in state if name not in own),
                "LoRA keys missing from the adapter":
                    [name for name in absent if name.rpartition(".")[2] in LORA_PARAMETERS],
                "head keys missing from the adapter, so the head would stay random":
                    [name for name in absent if any(name.startswith(f"{module}.") for module in head_modules)],
                "shape mismatches": [f"{name} {tuple(state[name].shape)} vs {tuple(own[name].shape)} in the model"
                                     for name in sorted(state) if name in own and state[name].shape != own[name].shape]}
    if any(problems.values()):
        raise LoRAError("the adapter does not fit this model (another base model, r or targets?): " + "; ".join(
            f"{label} ({len(names)}): {names[:4]}" for label, names in problems.items() if names))
    model.load_state_dict(state, strict=False)
