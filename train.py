"""Train one model of the comparison: the teacher, a distilled student, or a LoRA student.

    python train.py --method teacher    # fine-tune the 12-layer teacher      -> runs/teacher/
    python train.py --method odd        # distil into teacher layers 1,3,..,11 -> runs/odd/
    python train.py --method even       # distil into teacher layers 2,4,..,12 -> runs/even/
    python train.py --method lora       # LoRA on the same 6-layer student     -> runs/lora/
    python train.py --method lora-kd    # LoRA trained with the distillation loss -> runs/lora-kd/

Read it top to bottom: flags (each checked as it is parsed), the checks that need no training,
data, model for the chosen method, loss, the shared loop, save. The distilled students (odd,
even) copy their layers from the fine-tuned teacher (--teacher); the LoRA students (lora,
lora-kd) take theirs from the pretrained base (--model, --init-layers), and lora-kd uses the
teacher only for its soft labels. A run that ends unusable is kept in runs/<name>.failed/ and
never replaces a good runs/<name>/. Under ``torchrun --nproc_per_node=N train.py ...`` the same
script trains data-parallel.
"""
import argparse
import copy
import math
import sys
import time
from functools import partial
from pathlib import Path

import torch

from data import DataError
from data.load import load_splits
from distill import DistillError
from distill.loss import aligned_hidden_states, distillation_loss
from distill.student import build_student, build_student_from_base, parse_layers
from distill.teacher_logits import cached_teacher_logits, check_same_tokenizer
from embedded.pypi import AssetError, cache_root
from lora import LoRAError
from lora.adapter import save_adapter
from lora.model import count_parameters, inject_lora, mark_only_lora_trainable, merge_lora
from models.load import ModelError, load_classifier, load_config, load_tokenizer, resolve_model
from training.batching import encode_texts
from training.checkpoint import (CheckpointError, check_same_settings, checkpoint_dir, save_failed_run,
                                 save_run)
from training.distributed import init_distributed, shutdown_distributed
from training.loop import (EncodedSplit, NonFiniteLossError, TrainingConfig, cross_entropy_loss,
                           train)

METHODS = ("teacher", "odd", "even", "lora", "lora-kd")
DISTILLED = ("odd", "even", "lora-kd")  # the methods that learn from a fine-tuned teacher
LORA = ("lora", "lora-kd")
# Flags that change where or how fast a run goes, not what it learns: --resume may change them.
NOT_RESULT_CHANGING = ("out", "resume", "cache_dir", "cpu", "threads")
# Full fine-tuning moves pretrained weights a little; LoRA's adapters and new head start from
# zero or random and train ~1% of the parameters, so they want a larger step (Hu et al. 2021
# used 4e-4 to 5e-4 for RoBERTa-base on GLUE).
DEFAULT_LR = {"teacher": 5e-5, "odd": 5e-5, "even": 5e-5, "lora": 5e-4, "lora-kd": 5e-4}


def _number(kind, check, requirement: str):
    """An argparse type: ``kind(text)`` that must pass ``check``, else a one-line error saying ``requirement``."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {requirement}") from None
        if not check(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not {requirement}")
        return value
    parse.__name__ = requirement  # argparse names the type in some messages
    return parse


positive_int = _number(int, lambda x: x >= 1, "a whole number of at least 1")
seed_int = _number(int, lambda x: x >= 0, "a whole number of at least 0")
positive_float = _number(float, lambda x: 0 < x < math.inf, "a positive finite number")
non_negative_float = _number(float, lambda x: 0 <= x < math.inf, "a finite number >= 0")
open_fraction = _number(float, lambda x: 0 < x < 1, "a fraction strictly between 0 and 1")
fraction_below_one = _number(float, lambda x: 0 <= x < 1, "a fraction from 0 up to (not including) 1")


def module_names(text: str) -> str:
    """Comma-separated module names, stripped: "query, value" -> "query,value"."""
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"{text!r} has an empty name; write names like 'query,value'")
    return ",".join(names)


class OneLineErrorParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (the usage is one --help away)."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see python train.py --help)\n")


def parse_args(argv=None) -> argparse.Namespace:
    p = OneLineErrorParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--method", choices=METHODS, required=True)
    p.add_argument("--out", help="run folder (default runs/<method>)")
    p.add_argument("--resume", action="store_true", help="continue from the last completed epoch")
    data = p.add_argument_group("data")
    data.add_argument("--dataset", default="insults",
                      help="'insults' (embedded), a hub name, or a CSV/JSONL/Parquet file or saved dataset folder")
    data.add_argument("--text-column")
    data.add_argument("--label-column")
    data.add_argument("--toxic-labels", help="comma-separated raw label values that mean toxic")
    data.add_argument("--val-fraction", type=open_fraction, default=0.1)
    data.add_argument("--split-seed", type=seed_int, default=42,
                      help="seed of the validation (and, if missing, test) split; fixed across --seed so that "
                           "runs with different training seeds are compared on the same examples")
    data.add_argument("--max-length", type=positive_int, default=128)
    data.add_argument("--limit", type=positive_int, help="train on the first N training examples only (smoke runs)")
    data.add_argument("--cache-dir", help="where embedded assets are cached (default: $DISTIL_VS_LORA_CACHE "
                                          "or ~/.cache/distil-vs-lora)")
    model = p.add_argument_group("models")
    model.add_argument("--model", default="e5-small",
                       help="pretrained base for teacher and LoRA: 'e5-small' (embedded), a hub name or a folder")
    model.add_argument("--teacher", default="runs/teacher", help="fine-tuned teacher folder (odd, even, lora-kd)")
    model.add_argument("--layers", help="1-based layers the student keeps, e.g. 1,4,7: of the teacher for odd "
                                        "and even (default: the method's set), of --model for lora and "
                                        "lora-kd (default: --init-layers)")
    model.add_argument("--init-layers", default="even",
                       help="which pretrained layers of --model initialise the LoRA students (lora, "
                            "lora-kd): odd, even or a list")
    optim = p.add_argument_group("optimisation")
    optim.add_argument("--epochs", type=positive_int, default=3)
    optim.add_argument("--lr", type=positive_float, help="peak learning rate (default depends on the method)")
    optim.add_argument("--batch-size", type=positive_int, default=32, help="per rank under torchrun")
    optim.add_argument("--warmup-ratio", type=fraction_below_one, default=0.06)
    optim.add_argument("--weight-decay", type=non_negative_float, default=0.01)
    optim.add_argument("--max-grad-norm", type=positive_float, default=1.0)
    optim.add_argument("--seed", type=seed_int, default=42)
    optim.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=True,
                       help="bf16 autocast for the matrix multiplications (default on: about 1.9x faster "
                            "training on this CPU, see bench/RESULTS.md; --no-bf16 for fp32)")
    optim.add_argument("--cpu", action="store_true", help="train on the CPU even when CUDA is available")
    optim.add_argument("--threads", type=positive_int, help="torch intra-op threads (default: torch's choice)")
    kd = p.add_argument_group("distillation (odd, even, lora-kd)")
    kd.add_argument("--temperature", type=positive_float, default=2.0)
    kd.add_argument("--alpha-ce", type=non_negative_float, default=0.5)
    kd.add_argument("--alpha-kd", type=non_negative_float, default=0.5)
    kd.add_argument("--alpha-cos", type=non_negative_float, default=0.1)
    kd.add_argument("--cos-on", choices=("logits", "hidden"), default="logits",
                    help="cosine loss on logits (course notebook) or on aligned hidden states (DistilBERT)")
    lora = p.add_argument_group("LoRA (lora, lora-kd)")
    lora.add_argument("--lora-r", type=positive_int, default=8)
    lora.add_argument("--lora-alpha", type=positive_float, default=16.0)
    lora.add_argument("--lora-dropout", type=fraction_below_one, default=0.1)
    lora.add_argument("--lora-targets", type=module_names, default="query,value",
                      help="names of the linear layers to adapt; each must name a layer of the model")
    args = p.parse_args(argv)
    if args.method in DISTILLED and args.alpha_ce == args.alpha_kd == args.alpha_cos == 0:
        p.error("--alpha-ce, --alpha-kd and --alpha-cos are all 0: nothing would train the student")
    args.out = args.out or f"runs/{args.method}"
    args.lr = DEFAULT_LR[args.method] if args.lr is None else args.lr
    return args


def check_before_work(args) -> None:
    """Every check that needs no training, so a bad flag costs seconds and never touches a run folder.

    Each model name goes through ``models.load`` (one line for an unknown or offline name); the
    teacher must be a trained run folder; ``--resume`` must repeat the checkpoint's settings.
    """
    if args.method in DISTILLED:
        if not Path(args.teacher, "model.safetensors").is_file():
            hint = ("train it first with `python train.py --method teacher`, or pass --teacher FOLDER"
                    if args.teacher == "runs/teacher" else "pass the folder of a run of `train.py --method teacher`")
            raise ModelError(f"no fine-tuned teacher in {args.teacher} (a folder with model.safetensors): {hint}")
        load_config(args.teacher)
    if args.method not in ("odd", "even"):
        load_config(args.model, args.cache_dir)
    if args.resume:
        check_same_settings(checkpoint_dir(Path(args.out)), vars(args), ignored=NOT_RESULT_CHANGING)


def distillation_step_loss(model, batch, *, teacher_logits, args, teacher=None, layers=None):
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
    """Training finished but the model is not usable: it predicts (almost) the same for every comment."""


def is_degenerate(validation: dict) -> bool:
    """A constant predictor: the same probability for everything, or a ranking no better than chance."""
    return not validation["probability_std"] >= 1e-3 or not validation["roc_auc"] >= 0.6  # NaN fails too


def why_unusable(history: dict) -> str | None:
    """Why the finished run must not replace a good one, or None when it is usable."""
    if "best_epoch" not in history:
        return "no epoch reached a finite validation ROC-AUC (does the validation split hold both classes?)"
    best = history["epochs"][history["best_epoch"] - 1]["validation"]
    if is_degenerate(best):
        return (f"the run ended as a (near-)constant predictor: validation ROC-AUC {best['roc_auc']:.3f}, "
                f"probability spread {best['probability_std']:.2g}. This is a bug, not a result: check the "
                f"learning rate, that the right parameters train, and the labels.")
    return None


def main(argv=None) -> None:
    args = parse_args(argv)
    check_before_work(args)
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
    teacher, layers, new_head_modules = None, None, ("classifier",)
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
        depth = load_config(tokenizer_source).num_hidden_layers
        layers = parse_layers(args.layers or args.init_layers, depth)
        model, new_head_modules = build_student_from_base(tokenizer_source, layers)
        replaced = inject_lora(model, targets=tuple(args.lora_targets.split(",")), r=args.lora_r,
                               alpha=args.lora_alpha, dropout=args.lora_dropout)
        mark_only_lora_trainable(model, extra_trainable_modules=new_head_modules)
        if env.is_main:
            print(f"LoRA: wrapped {replaced} linear layers; new head modules trained in full: "
                  f"{', '.join(new_head_modules)}")
    tokenizer = load_tokenizer(tokenizer_source)
    if args.method == "lora-kd":
        check_same_tokenizer(tokenizer, load_tokenizer(args.teacher), tokenizer_source, args.teacher)
    if args.max_length > model.config.max_position_embeddings:
        raise ModelError(f"--max-length {args.max_length} is longer than the model's "
                         f"{model.config.max_position_embeddings} positions")
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
        loss_fn = partial(distillation_step_loss, teacher_logits=logits, args=args, teacher=teacher, layers=layers)

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
    try:
        history = train(model, loss_fn, train_split, val_split, config=config, env=env, pad_id=pad_id,
                        history=history, checkpoint=checkpoint_dir(out), resume=args.resume)
    except NonFiniteLossError as error:
        if env.is_main:  # the steps logged up to the explosion are what one needs to understand it
            kept = save_failed_run(out, str(error), history)
            error.args = (f"{error} The steps logged so far are in {kept}/history.json; {out}/ was left as it was.",)
        shutdown_distributed(env)
        raise

    # -- save -----------------------------------------------------------------------------
    if env.is_main:
        extra = {}
        if args.method in LORA:
            extra["adapter.safetensors"] = partial(
                save_adapter, model=model, r=args.lora_r, alpha=args.lora_alpha,
                targets=args.lora_targets.split(","), base_model=args.model, layers=layers,
                head_modules=new_head_modules)
            model = merge_lora(copy.deepcopy(model))
        history["total_time_s"] = round(time.perf_counter() - started, 2)
        problem = why_unusable(history)
        if problem:
            kept = save_failed_run(out, problem, history, model, tokenizer, extra)
            shutdown_distributed(env)
            raise DegenerateRunError(f"{problem} The run was kept for inspection in {kept}/ (see failure.json); "
                                     f"{out}/ was left as it was.")
        save_run(out, model, tokenizer, history, extra)
        best = history["epochs"][history["best_epoch"] - 1]["validation"]
        print(f"saved {out}/ (best epoch {history['best_epoch']}: validation ROC-AUC {best['roc_auc']:.4f}, "
              f"macro-F1 {best['macro_f1']:.4f}); wall time {history['total_time_s'] / 60:.1f} min")
    shutdown_distributed(env)


if __name__ == "__main__":
    try:
        main()
    except (DataError, AssetError, ModelError, DistillError, LoRAError, CheckpointError,
            NonFiniteLossError, DegenerateRunError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
