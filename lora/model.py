"""LoRA on a whole model: wrap the target layers, train only the adapters, merge them away.

Hu et al. 2021 (arXiv:2106.09685, section 7.1) find that adapting the attention query and value
projections together is the best use of a small parameter budget, so those are the default
targets. Everything else stays frozen except the parts that have no pretrained value: the new
classification head, and the pooler when the checkpoint has none. More targets give LoRA more
capacity at the same rank: ``TARGET_SETS["all-linear"]`` adapts every linear layer of each encoder
layer, attention and feed-forward (QLoRA, Dettmers et al. 2023, found that adapting all of them
is what closes the gap to full fine-tuning).
"""
from collections.abc import Iterable

import torch
from torch import nn

from lora.layer import LoRAError, LoRALinear

LORA_PARAMETERS = ("lora_A", "lora_B")
# Named target sets; each name stands for the module paths it lists (see ``target_matches``).
TARGET_SETS = {
    # BERT's six linear layers per encoder layer: attention's query, key, value and output
    # projections, then the feed-forward pair. Not the pooler or the classifier: the head trains in full.
    "all-linear": ("query", "key", "value", "attention.output.dense", "intermediate.dense", "output.dense"),
}


def resolve_targets(targets: Iterable[str] | str) -> tuple[str, ...]:
    """``targets`` as a tuple of module paths, each name of ``TARGET_SETS`` replaced by what it lists."""
    targets = (targets,) if isinstance(targets, str) else tuple(targets)
    return tuple(dict.fromkeys(path for target in targets for path in TARGET_SETS.get(target, (target,))))


def target_matches(module_name: str, target: str) -> bool:
    """Whether ``target`` names the module at ``module_name``: its last path components, whole.

    "query" names ``bert.encoder.layer.0.attention.self.query`` in every layer, and
    "intermediate.dense" the feed-forward ``...layer.0.intermediate.dense``; but "dense" alone
    would also name the pooler's ``bert.pooler.dense``, and "uery" names nothing.
    """
    return module_name == target or module_name.endswith(f".{target}")


def _in_module(name: str, module: str) -> bool:
    """Whether the tensor ``name`` belongs to the module at path ``module`` (whole path components only).

    "bert.pooler" holds "bert.pooler.dense.weight", but "dense" holds nothing: a substring test
    would put every feed-forward ``...output.dense`` layer in it.
    """
    return name.startswith(f"{module}.")


def _is_adapter_name(name: str, extra_trainable_modules: tuple[str, ...]) -> bool:
    """True for the tensors LoRA trains and saves: A, B, and those of the ``extra_trainable_modules``."""
    return (name.rpartition(".")[2] in LORA_PARAMETERS
            or any(_in_module(name, module) for module in extra_trainable_modules))


def _checked_module_names(model: nn.Module, modules: Iterable[str]) -> tuple[str, ...]:
    """``modules`` as a tuple, after checking that each is the full path of a module with parameters."""
    modules = (modules,) if isinstance(modules, str) else tuple(modules)
    names = [name for name, _ in model.named_parameters()]
    unknown = [module for module in modules if not any(_in_module(name, module) for name in names)]
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
    """Wrap, in place, every ``nn.Linear`` that one of ``targets`` names in a LoRALinear.

    A target names a module by the last components of its path (``target_matches``), so "query"
    hits BERT's ``encoder.layer.<i>.attention.self.query`` in every layer; a name of
    ``TARGET_SETS`` stands for its list. Every target must match at least one layer: a misspelt
    (or unstripped, " value") target would otherwise train silently with fewer adapters than
    asked for. ``rslora`` picks the scaling α/√r instead of α/r (``lora.layer.lora_scaling``).
    Returns how many layers were wrapped.
    """
    targets = resolve_targets(targets)
    linears = {name: module for name, module in model.named_modules() if isinstance(module, nn.Linear)}
    unmatched = [target for target in targets if not any(target_matches(name, target) for name in linears)]
    if unmatched or not targets:
        available = {name.rpartition(".")[2] for name in linears}
        raise LoRAError(f"no nn.Linear named {unmatched or list(targets)} in {type(model).__name__}; "
                        f"its linear layers are named {sorted(available)[:20]} (or a named set: "
                        f"{', '.join(TARGET_SETS)})")
    chosen = [name for name in linears if any(target_matches(name, target) for target in targets)]
    for name in chosen:
        _replace_module(model, name, LoRALinear(linears[name], r, alpha, dropout, rslora))
    return len(chosen)


def mark_only_lora_trainable(model: nn.Module, extra_trainable_modules: Iterable[str] = ("classifier",)) -> None:
    """Freeze every parameter except LoRA's A and B and those of ``extra_trainable_modules``.

    ``extra_trainable_modules`` are full module paths (``"classifier"``, ``"bert.pooler"``), each of
    which must exist: the new head, which has no pretrained value and must train in full.
    """
    modules = _checked_module_names(model, extra_trainable_modules)
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(_is_adapter_name(name, modules))


def lora_state_dict(model: nn.Module, extra_trainable_modules: Iterable[str] = ("classifier",)) -> dict[str, torch.Tensor]:
    """The tensors that differ from the base model: the adapters, plus those of ``extra_trainable_modules``."""
    modules = _checked_module_names(model, extra_trainable_modules)
    return {name: tensor for name, tensor in model.state_dict().items() if _is_adapter_name(name, modules)}


def load_lora_state_dict(model: nn.Module, state: dict[str, torch.Tensor],
                         head_modules: Iterable[str] = ("classifier",)) -> None:
    """Load adapter tensors into an injected model.

    Every LoRA layer must get its A and B, and every tensor of ``head_modules`` (the head that was
    trained from scratch) must be in ``state``: without it the model would silently keep a
    random head. Shapes must agree.
    """
    own = model.state_dict()
    head_modules = _checked_module_names(model, head_modules)
    unexpected = sorted(name for name in state if name not in own)
    missing = sorted(name for name in own if name.rpartition(".")[2] in LORA_PARAMETERS and name not in state)
    missing_head = sorted(name for name in own if name not in state
                          and any(_in_module(name, module) for module in head_modules))
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


def merge_lora(model: nn.Module) -> nn.Module:
    """Replace every LoRALinear by its own ``nn.Linear`` with ΔW folded in: an ordinary model again.

    The state dict then has the usual ``...query.weight`` keys, so ``save_pretrained`` writes a
    folder that plain transformers loads, and inference costs exactly what the base model costs.
    """
    for name, module in list(model.named_modules()):
        if isinstance(module, LoRALinear):
            module.merge()
            _replace_module(model, name, module.base)
    return model


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) number of parameters."""
    parameters = list(model.parameters())
    return sum(p.numel() for p in parameters if p.requires_grad), sum(p.numel() for p in parameters)
