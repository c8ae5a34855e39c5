"""A LoRA run's ``adapter.safetensors`` read back and applied to a fresh base model: one base on disk can serve
many task adapters. ``lora/lora.py`` writes the file; this is its reader, which the core never needs.
"""
import json
import os
from collections.abc import Iterable
from pathlib import Path

from safetensors import SafetensorError, safe_open
from torch import Tensor, nn

from lora.lora import ADAPTER_FORMAT, LORA_PARAMETERS, LoRAError, checked_module_names, inject_lora


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
    if raw.get("format") != ADAPTER_FORMAT:
        raise LoRAError(f"{path} is not a distil-vs-lora adapter (format {raw.get('format')!r}, not {ADAPTER_FORMAT!r})")
    read_back = {"r": int, "alpha": float, "targets": json.loads, "base_model": str, "layers": json.loads,
                 "dropout": float, "head_modules": json.loads, "rslora": json.loads}
    try:
        return state, {"format": ADAPTER_FORMAT} | {key: read(raw[key]) for key, read in read_back.items()}
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
