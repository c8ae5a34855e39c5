"""LoRA written out by hand (Hu et al. 2021, arXiv:2106.09685): h = W0 x + B A x · α/r (or α/√r, rsLoRA).

layer.py holds one adapted linear layer, model.py puts such layers into a whole model and takes
them out again, adapter.py saves and loads the trained adapter as a small safetensors file.
"""
from lora.adapter import FORMAT, apply_adapter, load_adapter, save_adapter
from lora.layer import LoRAError, LoRALinear, lora_scaling
from lora.model import (TARGET_SETS, count_parameters, inject_lora, load_lora_state_dict, lora_state_dict,
                        mark_only_lora_trainable, merge_lora, resolve_targets)

__all__ = ["FORMAT", "LoRAError", "LoRALinear", "TARGET_SETS", "apply_adapter", "count_parameters", "inject_lora",
           "load_adapter", "load_lora_state_dict", "lora_scaling", "lora_state_dict", "mark_only_lora_trainable",
           "merge_lora", "resolve_targets", "save_adapter"]
