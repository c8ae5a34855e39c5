"""Train one model of the comparison: the teacher, a student, a control or a baseline.

    python train.py --method teacher    # fine-tune the 12-layer teacher          -> runs/teacher/
    python train.py --method odd        # distil into teacher layers 1,3,..,11     -> runs/odd/
    python train.py --method even       # distil into teacher layers 2,4,..,12     -> runs/even/
    python train.py --method lora       # LoRA on the 6-layer student              -> runs/lora/
    python train.py --method lora-kd    # LoRA trained with the distillation loss  -> runs/lora-kd/
    python train.py --method teacher-strong  # a stronger 12-layer teacher (MPNet)   -> runs/teacher-strong/
    python train.py --method minilm-kd  # MiniLM-L6 distilled from teacher-strong  -> runs/minilm-kd/

Read it top to bottom: every method's recipe (RECIPES), then ``main``, the whole story of one run
(arguments, data, model, loss, loop, save), then the details in the order ``main`` uses them. The
loop is ``training/loop.py``. ``torchrun --nproc_per_node=N train.py ...`` trains data-parallel.
"""
import argparse
import copy
import math
import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import NamedTuple

import torch

from data import DataError
from data.assets import AssetError, cache_root
from data.load import load_splits
from distill import DistillError
from distill.loss import distillation_loss
from distill.student import build_student, build_student_from_base, parse_layers
from distill.teacher_logits import cached_teacher_logits
from lora.lora import (LoRAError, LoRALinear, count_parameters, inject_lora, mark_only_lora_trainable, merge_lora,
                       save_adapter)
from models.load import ModelError, load_classifier, load_config, load_tokenizer, resolve_model
from training.batching import MAX_LENGTH, MIN_LENGTH, encode_texts
from training.run_folder import (RunFolderError, claim_output, read_history, save_failed_run, save_run,
                                 trained_text_prefix)
from training.distributed import device_type, init_distributed, shutdown_distributed
from training.loop import EncodedSplit, NonFiniteLossError, TrainingConfig, bf16_is_native, cross_entropy_loss, train

# -- The recipes ----------------------------------------------------------------------------------
# Every method, written out. lr and epochs are make tune's choices on validation ROC-AUC at seed 0, a
# seed no evaluation run uses, each method (controls included) searched on its own grid (tuning.md in
# the results folder); tests/test_recipes.py fails when this table and make tune's tuned_defaults.json
# disagree. Nothing is read at run time: only a flag changes a run's recipe.

# LoRA on attention's query and value, rank 8, α = 16 (Hu et al. 2021, section 7.1; lora/lora.py).
LORA_R, LORA_ALPHA, LORA_DROPOUT, LORA_TARGETS = 8, 16.0, 0.1, "query,value"
# The distillation loss: temperature and the weights of its three terms (distill/loss.py says why). A recipe may
# set its own temperature and soft-label weight alpha_kd, the labels then weighing alpha_ce = 1 - alpha_kd.
TEMPERATURE, ALPHA_KD, ALPHA_COS = 2.0, 0.5, 0.1
BATCH_SIZE = 32


@dataclass(frozen=True)
class Recipe:
    """What one ``--method`` trains. ``start``: "pretrained" (all of ``model``, new head), "teacher-layers" (the
    fine-tuned teacher's embeddings, ``layers`` and head), "base-layers" (``model``'s embeddings and ``layers``,
    new head) or "tfidf" (no network: ``python -m baselines.tfidf`` fits it with these flags). ``loss``: "ce"
    (the labels) or "kd" (``distillation_loss`` against the teacher). ``lora``: train adapters and the head only.
    ``teacher``: the method whose run teaches this one, read from ``runs/<teacher>`` unless --teacher says.
    ``temperature`` and ``alpha_kd``: the distillation loss's, for the methods with loss "kd".
    """
    start: str
    loss: str
    lora: bool
    layers: str | None
    model: str | None
    lr: float | None
    epochs: int | None
    teacher: str = "teacher"
    temperature: float = TEMPERATURE
    alpha_kd: float = ALPHA_KD

    @property
    def needs_teacher(self) -> bool:
        return self.start == "teacher-layers" or self.loss == "kd"


RECIPES = {
    #                  start             loss  lora   layers  model       lr    epochs
    # the comparison the project exists for
    "teacher":     Recipe("pretrained",     "ce", False, None,   "e5-small", 5e-5, 3),
    "odd":         Recipe("teacher-layers", "kd", False, "odd",  None,       5e-5, 6),
    "even":        Recipe("teacher-layers", "kd", False, "even", None,       1e-4, 3),
    "lora":        Recipe("base-layers",    "ce", True,  "even", "e5-small", 2e-3, 10),
    "lora-kd":     Recipe("base-layers",    "kd", True,  "even", "e5-small", 1e-3, 10),
    # controls: each changes one thing of the method named in its comment
    "odd-ce":      Recipe("teacher-layers", "ce", False, "odd",  None,       5e-5, 3),   # odd without KD
    "lora-odd":    Recipe("teacher-layers", "ce", True,  "odd",  None,       1e-3, 6),   # lora from odd's start
    "full-even":   Recipe("base-layers",    "ce", False, "even", "e5-small", 1e-4, 3),   # lora at full rank
    "lora-minilm": Recipe("pretrained",     "ce", True,  None,   "minilm",   2e-3, 10),  # lora on a clean base
    # baselines: what a practitioner would use instead
    "minilm":      Recipe("pretrained",     "ce", False, None,   "minilm",   1e-4, 3),
    "tfidf":       Recipe("tfidf",          "ce", False, None,   None,       None, None),
    # a teacher stronger than minilm (all-mpnet-base-v2: 12 layers, hidden 768), which teaches through its logits
    # alone: MPNet's layers do not fit a BertConfig student. minilm-kd's temperature and soft-label weight were
    # searched too, and the defaults (T = 2, 0.5 / 0.5) won (tuning.md).
    "teacher-strong": Recipe("pretrained", "ce", False, None, "mpnet-base", 4e-5, 3),
    "minilm-kd":   Recipe("pretrained",     "kd", False, None,   "minilm",   5e-5, 6, teacher="teacher-strong"),
}


def main(argv=None, args=None, checkpoints=None, transfer_set=None, soft_labels=None, step_loss=None) -> None:
    """One run. The extras (experiments/train_extras.py) pass ``args``, these flags parsed with their own, and
    plug in: ``checkpoints``, which make it resumable (``train`` in training/loop.py); ``transfer_set(splits,
    args) -> (comments, record)``, unlabelled comments a distilled student also learns from through the teacher;
    ``soft_labels(texts, args, env) -> logits``, soft labels from other teachers than ``--teacher``; and
    ``step_loss``, a distillation step that also takes the ``teacher`` and the student's ``layers``."""
    # -- arguments: the method's recipe, changed by flags; checked before any work ------------------
    args = args or parse_args(argv)
    recipe = RECIPES[args.method]
    if recipe.start == "tfidf":
        raise SystemExit("error: tfidf is no network; python -m baselines.tfidf fits it (with these same flags)")
    check_before_work(args, recipe)
    env = init_distributed(force_cpu=args.cpu)
    if env.is_main:  # the folder is no file or link, and no other process trains into it
        claim_output(Path(args.out))
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    started = time.perf_counter()

    # -- data -------------------------------------------------------------------------------------
    splits = load_splits(args.dataset, text_column=args.text_column, label_column=args.label_column,
                         toxic_labels=args.toxic_labels.split(",") if args.toxic_labels else None,
                         val_fraction=args.val_fraction, seed=args.split_seed, cache_dir=args.cache_dir)
    if args.limit:
        splits.train.texts, splits.train.labels = splits.train.texts[:args.limit], splits.train.labels[:args.limit]
    transfer, transfer_record = transfer_set(splits, args) if transfer_set else ([], None)

    # -- model: the teacher, the student built from it or from the base, LoRA -----------------------
    model, tokenizer_source, teacher, layers, head_modules = build_model(args, recipe)
    if recipe.lora and env.is_main:
        wrapped = sum(isinstance(module, LoRALinear) for module in model.modules())
        print(f"LoRA: wrapped {wrapped} linear layers; trained in full besides the adapters: {', '.join(head_modules)}")
    tokenizer = load_tokenizer(tokenizer_source)
    if args.max_length > model.config.max_position_embeddings:
        raise ModelError(f"--max-length {args.max_length} is longer than the model's "
                         f"{model.config.max_position_embeddings} positions")
    pad_id = tokenizer.pad_token_id

    def encode(texts: list[str], labels: list[int]) -> EncodedSplit:
        return EncodedSplit(encode_texts(tokenizer, texts, args.max_length, args.text_prefix), labels)
    train_split = encode(splits.train.texts, splits.train.labels)
    val_split = encode(splits.validation.texts, splits.validation.labels)
    trainable, total = count_parameters(model)
    if env.is_main:
        print(f"{args.method}: {total:,} parameters, {trainable:,} trainable ({100 * trainable / total:.2f}%)")

    # -- loss: cross-entropy, or distillation against the teacher's cached logits -------------------
    labelled = None  # which training examples have a label: all, unless a transfer set adds some without
    if recipe.loss == "ce":
        loss_fn = cross_entropy_loss
    else:
        teacher.eval().requires_grad_(False).to(env.device)
        soft_labels = soft_labels or partial(teacher_soft_labels, args.teacher, teacher)
        logits = soft_labels(splits.train.texts, args, env)
        if transfer:  # the training examples first, then the transfer comments, each cached on its own
            # Unlabelled comments carry placeholder labels (0) that no loss term reads (``labelled``).
            transfer_split = encode(transfer, [0] * len(transfer))
            logits = torch.cat([logits, soft_labels(transfer, args, env)])
            labelled = torch.tensor([True] * len(train_split.labels) + [False] * len(transfer_split.labels))
            train_split = EncodedSplit(train_split.token_ids + transfer_split.token_ids,
                                       train_split.labels + transfer_split.labels)
        step = partial(step_loss, teacher=teacher, layers=layers) if step_loss else distillation_step_loss
        loss_fn = partial(step, teacher_logits=logits, args=args, labelled=labelled)

    # -- the loop (training/loop.py): AdamW, warm-up, an epoch's validation, the best epoch kept -----
    config = TrainingConfig(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                            warmup_ratio=args.warmup_ratio, weight_decay=args.weight_decay,
                            max_grad_norm=args.max_grad_norm, seed=args.seed, bf16=args.bf16)
    history = {"method": args.method, "args": vars(args), "layers": layers, "data": split_sizes(splits),
               "params": {"total": total, "trainable": trainable, "trainable_share": trainable / total}}
    if transfer_record:
        history["transfer_set"] = transfer_record
    out = Path(args.out)
    try:
        history = train(model, loss_fn, train_split, val_split, config=config, env=env, pad_id=pad_id,
                        history=history, checkpoints=checkpoints)
    except NonFiniteLossError as error:
        if env.is_main:  # the steps logged up to the explosion are what one needs to understand it
            kept = save_failed_run(out, str(error), history)
            error.args = (f"{error} The steps logged so far are in {kept}/history.json; {out}/ was left as it was.",)
        shutdown_distributed(env)
        raise

    # -- save: a plain Hugging Face folder (LoRA merged, its adapter beside it), written atomically --
    if env.is_main:
        extra = {}
        if recipe.lora:
            extra["adapter.safetensors"] = partial(
                save_adapter, model=model, r=args.lora_r, alpha=args.lora_alpha, rslora=args.lora_rslora,
                targets=args.lora_targets.split(","), layers=layers, head_modules=head_modules,
                base_model=args.teacher if recipe.start == "teacher-layers" else args.model)
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


# -- The details, in the order main uses them ----------------------------------------------------------

def parse_args(argv=None, add_flags=None) -> argparse.Namespace:
    """The flags, every unset recipe value (lr, epochs, layers, model) taken from RECIPES and bf16 from the device;
    ``add_flags(parser)`` adds an extra's own."""
    parser = build_parser()
    if add_flags:
        add_flags(parser)
    args = parser.parse_args(argv)
    recipe = RECIPES[args.method]
    args.temperature = recipe.temperature if args.temperature is None else args.temperature
    args.alpha_kd = recipe.alpha_kd if args.alpha_kd is None else args.alpha_kd
    args.alpha_ce = round(1 - args.alpha_kd, 6) if args.alpha_ce is None else args.alpha_ce
    if recipe.loss == "kd" and args.alpha_ce == args.alpha_kd == args.alpha_cos == 0:
        parser.error("--alpha-ce, --alpha-kd and --alpha-cos are all 0: nothing would train the student")
    if args.layers is not None and recipe.layers is None:
        parser.error(f"--layers chooses the layers of a 6-layer student; {args.method} keeps every layer")
    args.recipe_from = "flags" if args.lr is not None or args.epochs is not None else "train.py"
    args.out = args.out or f"runs/{args.method}"
    args.teacher = args.teacher or f"runs/{recipe.teacher}"
    args.model = args.model or recipe.model or "e5-small"
    args.layers = args.layers or recipe.layers
    args.lr = recipe.lr if args.lr is None else args.lr
    args.epochs = recipe.epochs if args.epochs is None else args.epochs
    if args.bf16 is None:
        args.bf16 = bf16_is_native(torch.device(device_type(args.cpu)))
    return args


def check_before_work(args, recipe: Recipe) -> None:
    """Every check that needs no training (model names, teachers), so a bad flag costs seconds."""
    if recipe.needs_teacher:
        check_teacher(args.teacher, args.text_prefix, recipe.teacher)
    if recipe.start in ("pretrained", "base-layers"):
        load_config(args.model, args.cache_dir)


def check_teacher(teacher: str, text_prefix: str, method: str = "teacher") -> None:
    """A trained teacher run folder, trained on inputs like this run's: its soft labels and layers fit them."""
    if not Path(teacher, "model.safetensors").is_file():
        hint = (f"train it first with `python train.py --method {method}`, or pass --teacher FOLDER"
                if teacher == f"runs/{method}" else f"pass the folder of a run of `train.py --method {method}`")
        raise ModelError(f"no fine-tuned teacher in {teacher} (a folder with model.safetensors): {hint}")
    load_config(teacher)
    trained_with = trained_text_prefix(read_history(Path(teacher)))
    if trained_with != text_prefix:
        raise ModelError(f"the teacher {teacher} was trained with --text-prefix {trained_with!r} but this run has "
                         f"{text_prefix!r}: its layers and soft labels fit the inputs it was trained on; pass "
                         f"--text-prefix {trained_with!r} or a teacher trained with {text_prefix!r}")


def split_sizes(splits) -> dict:
    """Each split's size and toxic share, for history.json."""
    return {name: {"size": len(split.labels), "positive_rate": split.positive_rate}
            for name, split in (("train", splits.train), ("validation", splits.validation), ("test", splits.test))}


class StartingModel(NamedTuple):
    """The model a method starts from, and what the rest of train.py needs to know about it."""
    model: torch.nn.Module
    tokenizer_source: str
    teacher: torch.nn.Module | None   # the fine-tuned teacher, for the methods that need one
    layers: list[int] | None          # the 1-based layers a 6-layer student keeps
    head_modules: tuple[str, ...]     # what trains in full besides LoRA's adapters


def build_model(args, recipe: Recipe) -> StartingModel:
    """Build the model ``recipe`` starts from, with only its trainable weights trainable."""
    teacher = load_classifier(args.teacher) if recipe.needs_teacher else None
    if recipe.start == "pretrained":
        source = resolve_model(args.model, args.cache_dir)
        model, layers = load_classifier(source, num_labels=2), None
    elif recipe.start == "teacher-layers":
        source = args.teacher
        layers = parse_layers(args.layers, teacher.config.num_hidden_layers)
        model = build_student(teacher, layers)
    else:
        source = resolve_model(args.model, args.cache_dir)
        layers = parse_layers(args.layers, load_config(source).num_hidden_layers)
        model = build_student_from_base(source, layers).model
    head_modules = ()
    if recipe.lora:
        # The pooler and classifier train in full: lora's start random on e5-small (which has no pooler),
        # and every LoRA row trains the same set, so that it differs from lora only in where it starts.
        head_modules = ("bert.pooler", "classifier")
        inject_lora(model, targets=tuple(args.lora_targets.split(",")), r=args.lora_r, alpha=args.lora_alpha,
                    dropout=args.lora_dropout, rslora=args.lora_rslora)
        mark_only_lora_trainable(model, extra_trainable_modules=head_modules)
    return StartingModel(model, source, teacher, layers, head_modules)


def teacher_soft_labels(folder: str, teacher, texts: list[str], args, env) -> torch.Tensor:
    """The logits of the teacher run in ``folder`` on ``texts``, computed once and cached (distill/teacher_logits.py).

    A teacher passes on what it knows through one pair of logits per comment, read with its own tokenizer,
    so a teacher of another architecture teaches as well as one the student was cut from (task-specific
    distillation, as in DistilBERT).
    """
    tokenizer = load_tokenizer(folder)
    split = EncodedSplit(encode_texts(tokenizer, texts, args.max_length, args.text_prefix), [0] * len(texts))
    return cached_teacher_logits(teacher.eval().requires_grad_(False), Path(folder), split,
                                 cache_root(args.cache_dir) / "teacher-logits", tokenizer.pad_token_id, env)


def distillation_step_loss(model, batch, *, teacher_logits, args, labelled=None):
    """The distillation loss, the teacher's logits looked up per example in the cache. ``labelled`` marks the
    examples with a label: a transfer set's comments have none and get no cross-entropy."""
    index = batch["index"].cpu()
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    return distillation_loss(logits.float(), teacher_logits[index].to(logits.device), batch["labels"],
                             temperature=args.temperature, alpha_ce=args.alpha_ce, alpha_kd=args.alpha_kd,
                             alpha_cos=args.alpha_cos, labelled=None if labelled is None else labelled[index])


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


def number(kind, check, requirement: str):
    """An argparse type: ``kind(text)`` that must pass ``check``, else a one-line error saying ``requirement``."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not check(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not {requirement}")
        return value
    parse.__name__ = requirement  # argparse names the type in some messages
    return parse


positive_int = number(int, lambda x: x >= 1, "a whole number of at least 1")
length_int = number(int, lambda x: x >= MIN_LENGTH, f"a whole number of at least {MIN_LENGTH}")
seed_int = number(int, lambda x: x >= 0, "a whole number of at least 0")
positive_float = number(float, lambda x: 0 < x < math.inf, "a positive finite number")
non_negative_float = number(float, lambda x: 0 <= x < math.inf, "a finite number >= 0")
open_fraction = number(float, lambda x: 0 < x < 1, "a fraction strictly between 0 and 1")
fraction_below_one = number(float, lambda x: 0 <= x < 1, "a fraction from 0 up to (not including) 1")
module_names = number(lambda text: ",".join(name.strip() for name in text.split(",")),
                      lambda names: all(names.split(",")), "a list of names like 'query,value'")
layer_spec = number(str, str.strip, "a layer spec such as 'odd' or '1,4,7'")


class OneLineErrorParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (the usage is one --help away)."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see python train.py --help)\n")


def build_parser() -> OneLineErrorParser:
    p = OneLineErrorParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--method", choices=list(RECIPES), required=True)
    p.add_argument("--out", help="run folder (default runs/<method>)")
    data = p.add_argument_group("data")
    data.add_argument("--dataset", default="insults",
                      help="'insults' or 'toxic-comments' (embedded), a hub name, or a CSV/JSONL/Parquet file or "
                           "saved dataset folder (data/load.py)")
    data.add_argument("--text-column")
    data.add_argument("--label-column")
    data.add_argument("--toxic-labels", help="comma-separated raw label values that mean toxic")
    data.add_argument("--val-fraction", type=open_fraction, default=0.1,
                      help="share of train carved out as validation when the dataset has no validation split")
    data.add_argument("--split-seed", type=seed_int, default=42,
                      help="seed of the carved splits; fixed across --seed, so all runs see the same examples")
    data.add_argument("--max-length", type=length_int, default=MAX_LENGTH,
                      help="tokens a comment is cut to, at most the model's positions")
    data.add_argument("--text-prefix", default="", help="put before every comment, e.g. 'query: ' for e5 models; "
                                                        "recorded, so scoring and serving add it too")
    data.add_argument("--limit", type=positive_int, help="train on the first N (and N transfer) comments only")
    data.add_argument("--cache-dir", help="embedded assets cache (default: $DISTIL_VS_LORA_CACHE or "
                                          "~/.cache/distil-vs-lora)")
    model = p.add_argument_group("models")
    model.add_argument("--model", help="the pretrained model: 'e5-small', 'minilm' or 'mpnet-base' (embedded), a hub "
                                       "name or a folder (default: the recipe's)")
    model.add_argument("--teacher", help="the fine-tuned teacher's run folder (default: runs/<the recipe's teacher>)")
    model.add_argument("--layers", type=layer_spec,
                       help="the layers a 6-layer student keeps: 1-based numbers such as 1,4,7 or a named set "
                            "(distill/student.py), of --teacher or of --model by the recipe's start")
    optim = p.add_argument_group("optimisation")
    optim.add_argument("--epochs", type=positive_int, help="default: the recipe's")
    optim.add_argument("--lr", type=positive_float, help="peak learning rate (default: the recipe's)")
    optim.add_argument("--batch-size", type=positive_int, default=BATCH_SIZE, help="per rank under torchrun")
    optim.add_argument("--warmup-ratio", type=fraction_below_one, default=0.06)
    optim.add_argument("--weight-decay", type=non_negative_float, default=0.01)
    optim.add_argument("--max-grad-norm", type=positive_float, default=1.0)
    optim.add_argument("--seed", type=seed_int, default=42)
    optim.add_argument("--bf16", action=argparse.BooleanOptionalAction,
                       help="bf16 autocast for the matrix multiplications (default: where the hardware has it, "
                            "about 1.9x faster than fp32 on an AVX512-BF16 CPU, bench/RESULTS.md; emulated "
                            "elsewhere and far slower); --no-bf16 for fp32")
    optim.add_argument("--cpu", action="store_true", help="train on the CPU even when CUDA is available")
    optim.add_argument("--threads", type=positive_int, help="torch intra-op threads (default: torch's choice)")
    kd = p.add_argument_group("distillation (the methods with loss kd)")
    kd.add_argument("--temperature", type=positive_float, help="default: the recipe's")
    kd.add_argument("--alpha-ce", type=non_negative_float, help="the labels' weight (default: 1 - alpha-kd)")
    kd.add_argument("--alpha-kd", type=non_negative_float, help="the soft labels' weight (default: the recipe's)")
    kd.add_argument("--alpha-cos", type=non_negative_float, default=ALPHA_COS)
    lora = p.add_argument_group("LoRA (the methods with lora)")
    lora.add_argument("--lora-r", type=positive_int, default=LORA_R)
    lora.add_argument("--lora-alpha", type=positive_float, default=LORA_ALPHA)
    lora.add_argument("--lora-dropout", type=fraction_below_one, default=LORA_DROPOUT)
    lora.add_argument("--lora-targets", type=module_names, default=LORA_TARGETS,
                      help="the linear layers of each encoder layer to adapt, by the end of their path: 'query', "
                           "'attention.output.dense' (lora/lora.py)")
    lora.add_argument("--lora-rslora", action=argparse.BooleanOptionalAction, default=False,
                      help="scale by alpha/sqrt(r) instead of alpha/r (rank-stabilised LoRA, lora/lora.py)")
    return p


# The errors a run ends with in one line, no traceback: each says what to change.
RUN_ERRORS = (DataError, AssetError, ModelError, DistillError, LoRAError, RunFolderError, NonFiniteLossError,
              DegenerateRunError)

if __name__ == "__main__":
    try:
        main()
    except RUN_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
