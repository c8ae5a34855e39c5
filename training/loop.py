"""The hand-written training loop that every method shares (no Trainer).

Methods differ only in their trainable parameters and their loss, ``loss_fn(model, batch) -> {"loss": total,
<term>: value, ...}``, whose terms are all logged (as in Hugging Face's ``distiller.py``). A step follows the BERT
fine-tuning recipe (Devlin et al. 2019): AdamW, gradient clipping, linear warm-up/decay, optional bf16 autocast. Each
epoch ends with a validation that runs in fp32 even under bf16, so that the best epoch and its
``validation_threshold`` are those ``evaluate.py`` recomputes from the saved model.
"""
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm
from transformers import get_linear_schedule_with_warmup

from training.batching import length_bucketed_batches, make_batch
from training.distributed import Distributed
from training.metrics import best_f1_threshold, binary_metrics

LossFn = Callable[[torch.nn.Module, dict], dict[str, torch.Tensor]]


class NonFiniteLossError(RuntimeError):
    """The loss or the gradient became NaN or infinite."""


@dataclass
class EncodedSplit:
    """A split after tokenisation: token ids per example (unpadded) and 0/1 labels."""
    token_ids: list[list[int]]
    labels: list[int]


@dataclass
class TrainingConfig:
    epochs: int = 3
    lr: float = 5e-5
    batch_size: int = 32
    warmup_ratio: float = 0.06
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    seed: int = 42
    bf16: bool = False
    eval_batch_size: int = 64


def cross_entropy_loss(model, batch: dict) -> dict[str, torch.Tensor]:
    """Plain fine-tuning on the hard labels: the teacher's and the LoRA student's loss."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    ce = F.cross_entropy(logits.float(), batch["labels"])
    return {"loss": ce, "ce": ce}


def autocast(device: torch.device, bf16: bool):
    """bf16 autocast runs the matrix multiplications in bfloat16 and keeps the weights in fp32."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16)


def bf16_is_native(device: torch.device) -> bool:
    """Whether ``device`` multiplies bfloat16 matrices in hardware (CUDA capability, CPU flags). Elsewhere bf16 is
    emulated: a BERT training step took 18x longer than in fp32 on an AVX2-only CPU."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    # torch's own CPUID checks (Linux, Windows and macOS alike); missing in a torch without them.
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return device.type == "cpu" and any(getattr(torch.cpu, check, lambda: False)() for check in checks)


@torch.inference_mode()
def predict_logits(model, split: EncodedSplit, pad_id: int, device: torch.device,
                   batch_size: int = 64, bf16: bool = False, progress: bool = False) -> torch.Tensor:
    """Logits [examples, classes] in the split's order, batched by length, without gradients."""
    model.eval()
    logits = torch.zeros(len(split.token_ids), model.config.num_labels)
    batches = length_bucketed_batches([len(ids) for ids in split.token_ids], batch_size, seed=0, epoch=0, shuffle=False)
    for indices in tqdm(batches, desc="scoring", unit="batch", disable=not progress, dynamic_ncols=True):
        batch = make_batch(indices, split.token_ids, split.labels, pad_id)
        with autocast(device, bf16):
            output = model(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device))
        logits[indices] = output.logits.float().cpu()
    return logits


def validate(model, split: EncodedSplit, pad_id: int, device, config: TrainingConfig) -> dict:
    """Validation metrics at 0.5 and the F1-maximising threshold chosen on this split, always in fp32."""
    logits = predict_logits(model, split, pad_id, device, config.eval_batch_size, bf16=False)
    probs = torch.softmax(logits, dim=-1)[:, 1].numpy()
    return {**binary_metrics(split.labels, probs),
            "loss": F.cross_entropy(logits, torch.tensor(split.labels)).item(),
            "best_f1_threshold": best_f1_threshold(split.labels, probs), "probability_std": float(probs.std())}


def build_optimizer(model, config: TrainingConfig, total_steps: int):
    """AdamW over the trainable parameters, without weight decay on biases and LayerNorm weights; ``fused=True``
    updates all parameters in one kernel (the teacher's step drops from 0.19 s to 0.02 s on CPU)."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    decay, no_decay = [p for p in trainable if p.ndim >= 2], [p for p in trainable if p.ndim < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=config.lr, fused=True)
    return optimizer, get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * total_steps), total_steps)


def epoch_seed(seed: int, epoch: int) -> int:
    """The torch seed of one epoch, reset every epoch so that a resumed run replays the same dropout masks: a
    hash of the pair (NumPy's SeedSequence), as with ``seed + epoch`` seed 1 epoch 1 would replay seed 2 epoch 0."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1, dtype=np.uint64)[0])


def trainable_state(model) -> dict[str, torch.Tensor]:
    """A copy of the weights that training changes: frozen ones never move, so for LoRA it is about 1% of the model."""
    return {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}


def train(model, loss_fn: LossFn, train_split: EncodedSplit, val_split: EncodedSplit, *,
          config: TrainingConfig, env: Distributed, pad_id: int, history: dict, checkpoints=None) -> dict:
    """Train ``model`` in place, leave it holding the best epoch's weights, and return the history.

    ``checkpoints``, if given (``python -m experiments.train_extras`` passes one), saves the state after every epoch and,
    when ``checkpoints.resume``, restores it first: (best weights, best ROC-AUC, first epoch to train).
    """
    model.to(env.device)
    # Forward through DDP, whose backward all-reduces the gradients; the rest uses the raw model, which has the
    # same parameters without DDP's "module." name prefix or the collective calls that rank 0 alone would make.
    network = DistributedDataParallel(model) if env.world_size > 1 else model
    lengths = [len(ids) for ids in train_split.token_ids]
    first_batches = length_bucketed_batches(lengths, config.batch_size, seed=config.seed, epoch=0,
                                            rank=env.rank, world_size=env.world_size)
    examples = sum(len(indices) for indices in first_batches) * env.world_size * config.epochs  # all ranks and epochs
    optimizer, scheduler = build_optimizer(model, config, len(first_batches) * config.epochs)

    history.setdefault("steps", [])
    history.setdefault("epochs", [])
    best_weights, best_auc, first_epoch = trainable_state(model), -1.0, 0
    if checkpoints and checkpoints.resume:
        best_weights, best_auc, first_epoch = checkpoints.restore(model, optimizer, scheduler, history)

    started = time.perf_counter() - history.get("train_time_s", 0.0)  # a resumed run counts its earlier epochs
    for epoch in range(first_epoch, config.epochs):
        torch.manual_seed(epoch_seed(config.seed, epoch))
        model.train()
        batches = length_bucketed_batches(lengths, config.batch_size, seed=config.seed, epoch=epoch,
                                          rank=env.rank, world_size=env.world_size)
        epoch_terms: dict[str, list[float]] = {}
        progress = tqdm(batches, desc=f"epoch {epoch + 1}/{config.epochs}", disable=not env.is_main, dynamic_ncols=True)
        for indices in progress:
            batch = make_batch(indices, train_split.token_ids, train_split.labels, pad_id)
            batch = {k: v.to(env.device) for k, v in batch.items()}
            with autocast(env.device, config.bf16):
                terms = loss_fn(network, batch)
            terms["loss"].backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            if not (torch.isfinite(terms["loss"]) and torch.isfinite(grad_norm)):
                optimizer.zero_grad(set_to_none=True)
                raise NonFiniteLossError(
                    f"the loss became {terms['loss'].item()} (gradient norm {grad_norm.item()}) at epoch "
                    f"{epoch + 1}, step {len(history['steps']) + 1}. Training stopped: try a lower --lr.")
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            logged = {name: round(value.item(), 6) for name, value in terms.items()}
            history["steps"].append({"step": len(history["steps"]) + 1, "epoch": epoch + 1,
                                     "lr": scheduler.get_last_lr()[0], **logged})
            for name, value in logged.items():
                epoch_terms.setdefault(name, []).append(value)
            progress.set_postfix({k: f"{v:.4f}" for k, v in logged.items()})

        if env.is_main:
            validation = validate(model, val_split, pad_id, env.device, config)
            # Each term's mean over the epoch; "ce", the hard-label cross-entropy, compares methods.
            train_terms = {name: float(np.mean(values)) for name, values in epoch_terms.items()}
            history["epochs"].append({"epoch": epoch + 1, "train_loss": train_terms["loss"], "train_terms": train_terms,
                                      "validation": validation, "wall_time_s": round(time.perf_counter() - started, 2)})
            print(f"epoch {epoch + 1}: train loss {train_terms['loss']:.4f} | validation loss {validation['loss']:.4f} "
                  f"acc {validation['accuracy']:.4f} F1 {validation['f1']:.4f} ROC-AUC {validation['roc_auc']:.4f}",
                  flush=True)
            if validation["roc_auc"] > best_auc:
                best_auc, best_weights = validation["roc_auc"], trainable_state(model)
                history.update(best_epoch=epoch + 1, validation_threshold=validation["best_f1_threshold"])
            history["train_time_s"] = time.perf_counter() - started
            if checkpoints:
                checkpoints.save(model, optimizer, scheduler, epoch, best_auc, best_weights, history)
        env.barrier()

    if env.is_main:
        model.load_state_dict(best_weights, strict=False)
    wall = time.perf_counter() - started
    history.update({"wall_time_s": round(wall, 2), "examples_per_s": round(examples / wall, 2),
                    "device": str(env.device), "world_size": env.world_size})
    return history
