"""LoRA written out by hand (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models",
arXiv:2106.09685): one adapted linear layer, put into a whole model, then merged away.

Fine-tuning changes a pretrained weight W0 by some ΔW; LoRA bets that ΔW has low rank, so it trains
ΔW = B A (A: r×in, B: out×r) with W0 frozen: h = W0 x + B A x · scaling (eq. 3). B starts at zero, so
training starts from exactly the pretrained model; for evaluation B A · scaling is added into W0 once
("merged"), and the layer costs no more than the original.

The paper's scaling α/r (section 4.1) spares retuning α when r changes. Kalajdzievski 2023 (arXiv:2312.03732)
shows that it over-corrects: the update and its gradients shrink like 1/√r, so a larger rank learns more
slowly and ends no better. Dividing by √r instead (rank-stabilised LoRA, rsLoRA) is opt-in here.

Targets: query and value together are the best use of a small budget (Hu et al., section 7.1), so they
are the default; any linear layer of an encoder layer can be named. ``save_adapter`` writes what a run trained,
as safetensors (never pickle: loading runs no code), with how ``inject_lora`` was called, so that the same
layers can be rebuilt on a fresh base model (``serving/adapter.py`` reads it back).
"""
import json
import math
import os
import re
from collections.abc import Iterable
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from training.files import write_atomically

ADAPTER_FORMAT = "distil-vs-lora-adapter/1"


class LoRAError(ValueError):
    """A LoRA adapter cannot be built, loaded or applied as asked."""


def lora_scaling(alpha: float, r: int, rslora: bool = False) -> float:
    """The factor of B A: α/r (Hu et al. 2021), or α/√r with rsLoRA (Kalajdzievski 2023)."""
    return alpha / math.sqrt(r) if rslora else alpha / r


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable low-rank update ``B @ A * scaling``."""

    def __init__(self, base: nn.Linear, r: int, alpha: float, dropout: float = 0.0, rslora: bool = False):
        super().__init__()
        self.base = base.requires_grad_(False)
        self.r, self.alpha, self.rslora = r, alpha, rslora
        self.scaling = lora_scaling(alpha, r, rslora)
        self.lora_A = nn.Parameter(base.weight.new_empty(r, base.in_features))  # base's dtype and device
        self.lora_B = nn.Parameter(base.weight.new_zeros(base.out_features, r))
        # A gets nn.Linear's own default init (as in loralib); B = 0 makes ΔW = 0 at the start.
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.lora_dropout = nn.Dropout(dropout)
        self.merged = False

    def delta_weight(self) -> torch.Tensor:
        """ΔW = B A · scaling, the same shape as the frozen weight."""
        return (self.lora_B @ self.lora_A) * self.scaling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.merged:  # ΔW already sits inside base.weight
            return self.base(x)
        return self.base(x) + (self.lora_dropout(x) @ self.lora_A.T @ self.lora_B.T) * self.scaling

    @torch.no_grad()
    def merge(self) -> None:
        """Fold ΔW into the frozen weight, for evaluation: one matmul instead of three, and no gradient for A, B."""
        if not self.merged:
            self.base.weight += self.delta_weight().to(self.base.weight.dtype)
            self.merged = True

    def extra_repr(self) -> str:
        return f"r={self.r}, alpha={self.alpha}, rslora={self.rslora}, scaling={self.scaling:g}, merged={self.merged}"


LORA_PARAMETERS = ("lora_A", "lora_B")
# A module inside an encoder layer: "bert.encoder.layer.3.attention.self.query" -> "attention.self.query".
_IN_ENCODER_LAYER = re.compile(r"\.layer\.\d+\.(.+)$")


def target_matches(module_name: str, target: str) -> bool:
    """Whether ``target`` names ``module_name``, a linear layer inside an encoder layer."""
    if (inside := _IN_ENCODER_LAYER.search(module_name)) is None:
        return False
    path = inside.group(1)
    # A dotted target is a whole path ("output.dense" is not "attention.output.dense"); "query" a last component.
    return path == target or ("." not in target and path.rpartition(".")[2] == target)


def is_adapter_tensor(name: str, extra_trainable_modules: tuple[str, ...]) -> bool:
    """True for the tensors LoRA trains and saves: A, B, and those of the ``extra_trainable_modules``."""
    # Whole path components: a substring test would put every ...output.dense in a module "dense".
    return (name.rpartition(".")[2] in LORA_PARAMETERS
            or any(name.startswith(f"{module}.") for module in extra_trainable_modules))


def checked_module_names(model: nn.Module, modules: Iterable[str]) -> tuple[str, ...]:
    """``modules`` as a tuple, after checking that each is the full path of a module with parameters."""
    modules = (modules,) if isinstance(modules, str) else tuple(modules)
    names = [name for name, _ in model.named_parameters()]
    unknown = [module for module in modules if not any(name.startswith(f"{module}.") for name in names)]
    if unknown:
        top_level = sorted({name.split(".")[0] for name in names})
        raise LoRAError(f"no module with parameters at {unknown} in {type(model).__name__}: give full module "
                        f"paths as model.get_submodule takes them, e.g. 'classifier' or 'bert.pooler' "
                        f"(top-level modules: {top_level})")
    return modules


def _replace_module(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child_name = name.rpartition(".")
    setattr(model.get_submodule(parent_name), child_name, new)


def inject_lora(model: nn.Module, targets: Iterable[str] = ("query", "value"), r: int = 8,
                alpha: float = 16, dropout: float = 0.1, rslora: bool = False) -> int:
    """Wrap, in place, every ``nn.Linear`` that one of ``targets`` names in a LoRALinear; return how many."""
    targets = (targets,) if isinstance(targets, str) else tuple(targets)
    linears = {name: module for name, module in model.named_modules() if isinstance(module, nn.Linear)}
    # Every target must match: a misspelt (or unstripped, " value") one would silently train fewer adapters.
    unmatched = [target for target in targets if not any(target_matches(name, target) for name in linears)]
    if unmatched or not targets:
        available = sorted({match.group(1) for name in linears if (match := _IN_ENCODER_LAYER.search(name))})
        raise LoRAError(f"no linear layer of an encoder layer named {unmatched or list(targets)} in "
                        f"{type(model).__name__}; they are {available[:20]}")
    chosen = [name for name in linears if any(target_matches(name, target) for target in targets)]
    for name in chosen:
        _replace_module(model, name, LoRALinear(linears[name], r, alpha, dropout, rslora))
    return len(chosen)


def mark_only_lora_trainable(model: nn.Module, extra_trainable_modules: Iterable[str] = ("classifier",)) -> None:
    """Freeze all but LoRA's A and B and the ``extra_trainable_modules``: the new head, with no pretrained value."""
    modules = checked_module_names(model, extra_trainable_modules)
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(is_adapter_tensor(name, modules))


def lora_state_dict(model: nn.Module,
                    extra_trainable_modules: Iterable[str] = ("classifier",)) -> dict[str, torch.Tensor]:
    """The tensors that differ from the base model: the adapters, plus those of ``extra_trainable_modules``."""
    modules = checked_module_names(model, extra_trainable_modules)
    return {name: tensor for name, tensor in model.state_dict().items() if is_adapter_tensor(name, modules)}


def merge_lora(model: nn.Module) -> nn.Module:
    """Replace every LoRALinear by its ``nn.Linear`` with ΔW folded in: a plain model, as fast as the base one."""
    for name, module in list(model.named_modules()):
        if isinstance(module, LoRALinear):
            module.merge()
            _replace_module(model, name, module.base)
    return model


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) number of parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad), sum(p.numel() for p in model.parameters())


def save_adapter(path: str | os.PathLike, model: nn.Module, *, r: int, alpha: float, targets: Iterable[str],
                 base_model: str, layers: list[int] | None = None,
                 head_modules: Iterable[str] = ("classifier",), rslora: bool = False) -> Path:
    """Write the adapters and ``head_modules`` (trained in full: they started random) to one file, atomically."""
    path, head_modules = Path(path), list(head_modules)
    dropout = next(module.lora_dropout.p for module in model.modules() if isinstance(module, LoRALinear))
    metadata = {"format": ADAPTER_FORMAT, "r": str(r), "alpha": str(alpha), "targets": json.dumps(list(targets)),
                "base_model": str(base_model), "layers": json.dumps(layers),
                "dropout": str(dropout), "head_modules": json.dumps(head_modules),
                "rslora": json.dumps(rslora), "scaling": str(lora_scaling(alpha, r, rslora))}
    state = {name: tensor.detach().cpu().contiguous() for name, tensor in lora_state_dict(model, head_modules).items()}
    write_atomically(path, lambda temporary: save_file(state, temporary, metadata=metadata))
    return path

