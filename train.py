"""Train one model of the comparison: the teacher, a distilled student, or a LoRA student.

    python train.py --method teacher    # fine-tune the 12-layer teacher      -> runs/teacher/
    python train.py --method odd        # distil into teacher layers 1,3,..,11 -> runs/odd/
    python train.py --method even       # distil into teacher layers 2,4,..,12 -> runs/even/
    python train.py --method lora       # LoRA on the same 6-layer student     -> runs/lora/
    python train.py --method lora-kd    # LoRA trained with the distillation loss -> runs/lora-kd/

Read it top to bottom: flags, data, model for the chosen method, loss, the shared loop, save.
Under ``torchrun --nproc_per_node=N train.py ...`` the same script trains data-parallel.
"""
import argparse
import copy
import sys
import time
from functools import partial
from pathlib import Path

import torch
from transformers import AutoConfig

from data import DataError
from data.load import load_splits
from distill import DistillError
from distill.loss import aligned_hidden_states, distillation_loss
from distill.student import build_student, build_student_from_base, parse_layers
from distill.teacher_logits import cached_teacher_logits
from embedded.pypi import AssetError, cache_root
from lora import LoRAError
from lora.adapter import save_adapter
from lora.model import count_parameters, inject_lora, mark_only_lora_trainable, merge_lora
from models.load import ModelError, load_classifier, load_tokenizer, resolve_model
from training.batching import encode_texts
from training.checkpoint import CheckpointError, checkpoint_dir, save_run
from training.distributed import init_distributed, shutdown_distributed
from training.loop import (EncodedSplit, NonFiniteLossError, TrainingConfig, cross_entropy_loss,
                           train)

METHODS = ("teacher", "odd", "even", "lora", "lora-kd")
# Full fine-tuning moves pretrained weights a little; LoRA's adapters and new head start from
# zero or random and train ~1% of the parameters, so they want a larger step (Hu et al. 2021
# used 4e-4 to 5e-4 for RoBERTa-base on GLUE).
DEFAULT_LR = {"teacher": 5e-5, "odd": 5e-5, "even": 5e-5, "lora": 5e-4, "lora-kd": 5e-4}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--method", choices=METHODS, required=True)
    p.add_argument("--out", help="run folder (default runs/<method>)")
    p.add_argument("--resume", action="store_true", help="continue from the last completed epoch")
    data = p.add_argument_group("data")
    data.add_argument("--dataset", default="insults",
                      help="'insults' (embedded), a hub name, or a CSV/JSONL/Parquet file or saved dataset folder")
    data.add_argument("--text-column")
    data.add_argument("--label-column")
    data.add_argument("--toxic-labels", help="comma-separated raw label values that mean toxic")
    data.add_argument("--val-fraction", type=float, default=0.1)
    data.add_argument("--split-seed", type=int, default=42,
                      help="seed of the validation (and, if missing, test) split; fixed across --seed so that "
                           "runs with different training seeds are compared on the same examples")
    data.add_argument("--max-length", type=int, default=128)
    data.add_argument("--limit", type=int, help="train on the first N training examples only (smoke runs)")
    data.add_argument("--cache-dir", help="where embedded assets are cached (default: $DISTIL_VS_LORA_CACHE "
                                          "or ~/.cache/distil-vs-lora)")
    model = p.add_argument_group("models")
    model.add_argument("--model", default="e5-small",
                       help="pretrained base for teacher and LoRA: 'e5-small' (embedded), a hub name or a folder")
    model.add_argument("--teacher", default="runs/teacher", help="fine-tuned teacher folder (odd, even, lora-kd)")
    model.add_argument("--layers", help="1-based teacher layers for the student, e.g. 1,4,7 (default: the "
                                        "method's odd or even set)")
    model.add_argument("--init-layers", default="even",
                       help="which pretrained layers initialise the LoRA student: odd, even or a list")
    optim = p.add_argument_group("optimisation")
    optim.add_argument("--epochs", type=int, default=3)
    optim.add_argument("--lr", type=float, help="peak learning rate (default depends on the method)")
    optim.add_argument("--batch-size", type=int, default=32)
    optim.add_argument("--warmup-ratio", type=float, default=0.06)
    optim.add_argument("--weight-decay", type=float, default=0.01)
    optim.add_argument("--max-grad-norm", type=float, default=1.0)
    optim.add_argument("--seed", type=int, default=42)
    optim.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=True,
                       help="bf16 autocast for the matrix multiplications (default on: about 1.9x faster "
                            "training on this CPU, see bench/RESULTS.md; --no-bf16 for fp32)")
    optim.add_argument("--cpu", action="store_true", help="train on the CPU even when CUDA is available")
    optim.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    kd = p.add_argument_group("distillation (odd, even, lora-kd)")
    kd.add_argument("--temperature", type=float, default=2.0)
    kd.add_argument("--alpha-ce", type=float, default=0.5)
    kd.add_argument("--alpha-kd", type=float, default=0.5)
    kd.add_argument("--alpha-cos", type=float, default=0.1)
    kd.add_argument("--cos-on", choices=("logits", "hidden"), default="logits",
                    help="cosine loss on logits (course notebook) or on aligned hidden states (DistilBERT)")
    lora = p.add_argument_group("LoRA (lora, lora-kd)")
    lora.add_argument("--lora-r", type=int, default=8)
    lora.add_argument("--lora-alpha", type=float, default=16.0)
    lora.add_argument("--lora-dropout", type=float, default=0.1)
    lora.add_argument("--lora-targets", default="query,value")
    args = p.parse_args(argv)
    args.out = args.out or f"runs/{args.method}"
    args.lr = args.lr or DEFAULT_LR[args.method]
    return args


def distilled_loss(model, batch, *, teacher_logits, args, teacher=None, layers=None):
    """The distillation loss, with teacher logits looked up from the per-example cache.

    With ``--cos-on hidden`` the teacher runs on every step, since its hidden states are not
    cached; student layer k is aligned with the teacher layer it was copied from.
    """
    hidden = args.cos_on == "hidden"
    student_out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                        output_hidden_states=hidden)
    student_hidden = teacher_hidden = None
    if hidden:
        with torch.no_grad():
            teacher_out = teacher(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                  output_hidden_states=True)
        student_hidden, teacher_hidden = aligned_hidden_states(student_out.hidden_states,
                                                               teacher_out.hidden_states, layers)
    return distillation_loss(
        student_out.logits.float(), teacher_logits[batch["index"].cpu()].to(batch["input_ids"].device),
        batch["labels"], temperature=args.temperature, alpha_ce=args.alpha_ce, alpha_kd=args.alpha_kd,
        alpha_cos=args.alpha_cos, student_hidden=student_hidden, teacher_hidden=teacher_hidden,
        attention_mask=batch["attention_mask"] if hidden else None)


class DegenerateRunError(RuntimeError):
    """Training finished but the model ignores its input: it predicts (almost) the same for every comment."""


def is_degenerate(validation: dict) -> bool:
    """A constant predictor: the same probability for everything, or a ranking no better than chance."""
    return validation["probability_std"] < 1e-3 or validation["roc_auc"] < 0.6


def main(argv=None) -> None:
    args = parse_args(argv)
    env = init_distributed(force_cpu=args.cpu)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    started = time.perf_counter()

    # -- data -----------------------------------------------------------------------------
    splits = load_splits(args.dataset, text_column=args.text_column, label_column=args.label_column,
                         toxic_labels=args.toxic_labels.split(",") if args.toxic_labels else None,
                         val_fraction=args.val_fraction, seed=args.split_seed, cache_dir=args.cache_dir)
    if args.limit:
        splits.train.texts, splits.train.labels = splits.train.texts[:args.limit], splits.train.labels[:args.limit]

    # -- model ----------------------------------------------------------------------------
    if args.method in ("odd", "even", "lora-kd") and args.teacher == "runs/teacher" and not Path(args.teacher).exists():
        raise ModelError("no fine-tuned teacher in runs/teacher: train it first with "
                         "`python train.py --method teacher`, or pass --teacher FOLDER")
    teacher, layers, new_head = None, None, ("classifier",)
    if args.method == "teacher":
        tokenizer_source = resolve_model(args.model, args.cache_dir)
        model = load_classifier(tokenizer_source, num_labels=2)
    elif args.method in ("odd", "even"):
        tokenizer_source = args.teacher
        teacher = load_classifier(args.teacher)
        layers = parse_layers(args.layers or args.method, teacher.config.num_hidden_layers)
        model = build_student(teacher, layers)
    else:
        tokenizer_source = resolve_model(args.model, args.cache_dir)
        depth = AutoConfig.from_pretrained(tokenizer_source).num_hidden_layers
        layers = parse_layers(args.layers or args.init_layers, depth)
        model, new_head = build_student_from_base(tokenizer_source, layers)
        replaced = inject_lora(model, targets=tuple(args.lora_targets.split(",")), r=args.lora_r,
                               alpha=args.lora_alpha, dropout=args.lora_dropout)
        mark_only_lora_trainable(model, also=new_head)
        if env.is_main:
            print(f"LoRA: wrapped {replaced} linear layers; new head modules trained in full: {', '.join(new_head)}")
    tokenizer = load_tokenizer(tokenizer_source)
    pad_id = tokenizer.pad_token_id

    def encode(split):
        return EncodedSplit(encode_texts(tokenizer, split.texts, args.max_length), split.labels)
    train_split, val_split = encode(splits.train), encode(splits.validation)

    trainable, total = count_parameters(model)
    if env.is_main:
        print(f"{args.method}: {total:,} parameters, {trainable:,} trainable ({100 * trainable / total:.2f}%)")

    # -- loss -----------------------------------------------------------------------------
    if args.method in ("teacher", "lora"):
        loss_fn = cross_entropy_loss
    else:
        if teacher is None:
            teacher = load_classifier(args.teacher)
        teacher.eval().requires_grad_(False).to(env.device)
        logits = cached_teacher_logits(teacher, Path(args.teacher), train_split,
                                       cache_root(args.cache_dir) / "teacher-logits", pad_id, env)
        if args.cos_on == "logits":
            teacher = None
        loss_fn = partial(distilled_loss, teacher_logits=logits, args=args, teacher=teacher, layers=layers)

    # -- train ----------------------------------------------------------------------------
    config = TrainingConfig(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                            warmup_ratio=args.warmup_ratio, weight_decay=args.weight_decay,
                            max_grad_norm=args.max_grad_norm, seed=args.seed, bf16=args.bf16)
    history = {"method": args.method, "args": vars(args), "layers": layers,
               "data": {name: {"size": len(split.labels), "positive_rate": split.positive_rate}
                        for name, split in (("train", splits.train), ("validation", splits.validation),
                                            ("test", splits.test))},
               "params": {"total": total, "trainable": trainable, "trainable_share": trainable / total}}
    out = Path(args.out)
    history = train(model, loss_fn, train_split, val_split, config=config, env=env, pad_id=pad_id,
                    history=history, checkpoint=checkpoint_dir(out), resume=args.resume)

    # -- save -----------------------------------------------------------------------------
    if env.is_main:
        extra = {}
        if args.method in ("lora", "lora-kd"):
            extra["adapter.safetensors"] = partial(
                save_adapter, model=model, r=args.lora_r, alpha=args.lora_alpha,
                targets=args.lora_targets.split(","), base_model=args.model, layers=layers, also=new_head)
            model = merge_lora(copy.deepcopy(model))
        history["total_time_s"] = round(time.perf_counter() - started, 2)
        save_run(out, model, tokenizer, history, extra)
        best = history["epochs"][history["best_epoch"] - 1]["validation"]
        print(f"saved {out}/ (best epoch {history['best_epoch']}: validation ROC-AUC {best['roc_auc']:.4f}, "
              f"macro-F1 {best['macro_f1']:.4f}); wall time {history['total_time_s'] / 60:.1f} min")
        if is_degenerate(best):
            shutdown_distributed(env)
            raise DegenerateRunError(
                f"{out} ended as a (near-)constant predictor: validation ROC-AUC {best['roc_auc']:.3f}, "
                f"probability spread {best['probability_std']:.2g}. This is a bug, not a result: check the "
                f"learning rate, that the right parameters train, and the labels.")
    shutdown_distributed(env)


if __name__ == "__main__":
    try:
        main()
    except (DataError, AssetError, ModelError, DistillError, LoRAError, CheckpointError,
            NonFiniteLossError, DegenerateRunError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
