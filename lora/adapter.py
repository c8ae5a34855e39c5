"""The adapter file: the few tensors a LoRA run trained, plus what it takes to rebuild the model.

A LoRA run changes a small share of the parameters, so its adapter is a small file that sits
next to the merged model. It is a single safetensors file (plain tensors, never pickle, so
loading it cannot run code) whose string metadata records how ``inject_lora`` was called, so
the same layers can be rebuilt on a fresh copy of the base model and the tensors loaded into them.
"""
import json
import os
from collections.abc import Iterable
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from lora.lora import (LORA_PARAMETERS, LoRAError, LoRALinear, checked_module_names, inject_lora, lora_scaling,
                       lora_state_dict, resolve_targets, target_matches)
from training.files import write_atomically

FORMAT = "distil-vs-lora-adapter/1"


def _dropout_of_checked_layers(model: nn.Module, r: int, alpha: float, rslora: bool,
                               targets: tuple[str, ...]) -> float:
    """The LoRA dropout of ``model``, after checking its LoRA layers are what the metadata will claim."""
    wrapped = [(name, module) for name, module in model.named_modules() if isinstance(module, LoRALinear)]
    if not wrapped:
        raise LoRAError("the model has no LoRA layers (already merged?); save the adapter before merge_lora")
    for name, layer in wrapped:
        if not any(target_matches(name, target) for target in targets) \
                or (layer.r, layer.alpha, layer.rslora) != (r, alpha, rslora):
            raise LoRAError(f"save_adapter was told r={r}, alpha={alpha}, rslora={rslora}, targets={list(targets)}, "
                            f"but the model has a LoRA layer '{name.rpartition('.')[2]}' with r={layer.r}, "
                            f"alpha={layer.alpha}, rslora={layer.rslora}")
    return wrapped[0][1].lora_dropout.p


def save_adapter(path: str | os.PathLike, model: nn.Module, *, r: int, alpha: float, targets: Iterable[str],
                 base_model: str, layers: list[int] | None = None,
                 head_modules: Iterable[str] = ("classifier",), rslora: bool = False) -> Path:
    """Write the adapters and the head of ``model`` to one safetensors file, atomically.

    ``head_modules`` are the module paths trained in full because they started random (the
    classifier, and the pooler when the base has none); they are recorded so that loading can
    check they are all there. The targets are recorded as module paths (named sets written out),
    and the scaling both as the rule (``rslora``) and as the number it gives, so that the file
    says what it computes.
    """
    path, targets, head_modules = Path(path), resolve_targets(targets), list(head_modules)
    dropout = _dropout_of_checked_layers(model, r, alpha, rslora, targets)
    metadata = {"format": FORMAT, "r": str(r), "alpha": str(alpha), "targets": json.dumps(list(targets)),
                "base_model": str(base_model), "layers": json.dumps(layers), "dropout": str(dropout),
                "head_modules": json.dumps(head_modules), "rslora": json.dumps(rslora),
                "scaling": str(lora_scaling(alpha, r, rslora))}
    tensors = {name: tensor.detach().cpu().contiguous()
               for name, tensor in lora_state_dict(model, head_modules).items()}
    write_atomically(path, lambda temporary: save_file(tensors, temporary, metadata=metadata))
    return path


def load_adapter(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict]:
    """Read an adapter file: (tensors, metadata with r, alpha, targets, base_model, layers, dropout,
    head_modules, rslora)."""
    path = Path(path)
    if not path.is_file():
        raise LoRAError(f"no adapter file at {path}")
    try:
        with safe_open(path, framework="pt") as file:
            raw = file.metadata() or {}
            state = {name: file.get_tensor(name) for name in file.keys()}
    except SafetensorError as error:
        raise LoRAError(f"{path} is not a readable safetensors file; it may be truncated or corrupt ({error})") from error
    if raw.get("format") != FORMAT:
        raise LoRAError(f"{path} is not a distil-vs-lora adapter: its format is {raw.get('format')!r}, "
                        f"expected {FORMAT!r}")
    try:
        meta = {"format": FORMAT, "r": int(raw["r"]), "alpha": float(raw["alpha"]),
                "targets": json.loads(raw["targets"]), "base_model": raw["base_model"],
                "layers": json.loads(raw["layers"]), "dropout": float(raw["dropout"]),
                "head_modules": json.loads(raw["head_modules"]), "rslora": json.loads(raw["rslora"])}
    except (KeyError, ValueError) as error:  # json.JSONDecodeError is a ValueError
        raise LoRAError(f"{path}: the adapter metadata is incomplete or malformed ({error!r})") from error
    return state, meta


def apply_adapter(model: nn.Module, state: dict[str, torch.Tensor], meta: dict) -> nn.Module:
    """Rebuild the recorded LoRA layers on a fresh base ``model`` and load the adapter and head tensors into them."""
    inject_lora(model, targets=meta["targets"], r=meta["r"], alpha=meta["alpha"], dropout=meta["dropout"],
                rslora=meta["rslora"])
    load_lora_state_dict(model, state, meta["head_modules"])
    return model


def load_lora_state_dict(model: nn.Module, state: dict[str, torch.Tensor],
                         head_modules: Iterable[str] = ("classifier",)) -> None:
    """Load adapter tensors into an injected model.

    Every LoRA layer must get its A and B, and every tensor of ``head_modules`` (the head that was
    trained from scratch) must be in ``state``: without it the model would silently keep a
    random head. Shapes must agree.
    """
    own = model.state_dict()
    head_modules = checked_module_names(model, head_modules)
    unexpected = sorted(name for name in state if name not in own)
    missing = sorted(name for name in own if name.rpartition(".")[2] in LORA_PARAMETERS and name not in state)
    missing_head = sorted(name for name in own if name not in state
                          and any(name.startswith(f"{module}.") for module in head_modules))
    wrong_shape = [f"{name} {tuple(state[name].shape)} vs {tuple(own[name].shape)} in the model"
                   for name in sorted(state) if name in own and state[name].shape != own[name].shape]
    problems = [f"{label} ({len(names)}): {names[:4]}" for label, names in
                (("keys the model lacks", unexpected), ("LoRA keys missing from the adapter", missing),
                 ("head keys missing from the adapter, so the head would stay random", missing_head),
                 ("shape mismatches", wrong_shape)) if names]
    if problems:
        raise LoRAError("the adapter does not fit this model (another base model, r or targets?): "
                        + "; ".join(problems))
    model.load_state_dict(state, strict=False)
