"""DistilBERT's cosine on hidden states (Sanh et al. 2019, arXiv:1910.01108, section 3): train.py's distillation
step, its cosine term moved from the logits to each student layer's output and the teacher layer it was copied from.

    python -m experiments.train_extras --method odd --cos-on hidden

The teacher runs at every step, since hidden states are not cached, and it reads the student's token ids, so the
two must share a tokenizer (``check_same_tokenizer``). DistilBERT aligned only the last hidden states; here every
kept layer is paired with its source, so the copied layers are held close to what they computed in the teacher.
"""
from collections.abc import Sequence

import torch
from torch import Tensor

from distill import DistillError
from distill.loss import cosine_alignment, distillation_loss
from models.load import load_tokenizer, resolve_model


def add_hidden_state_flags(parser) -> None:
    """``--cos-on``, added to train.py's flags (experiments/train_extras.py)."""
    parser.add_argument("--cos-on", choices=("logits", "hidden"), default="logits",
                        help="the distillation's cosine term on the logits (train.py's), or on aligned hidden "
                             "states as DistilBERT does (experiments/hidden_states.py)")


def hidden_state_flag_problem(args) -> str | None:
    """Why ``--cos-on hidden`` cannot work with the other parsed flags, or None."""
    if args.cos_on == "hidden" and args.soft_labels_from:
        return ("--soft-labels-from averages the teachers' logits; --cos-on hidden would align with one "
                "teacher's hidden states: use --cos-on logits")
    return None


def aligned_hidden_states(student_hidden_states: Sequence[Tensor], teacher_hidden_states: Sequence[Tensor],
                          layers: Sequence[int]) -> tuple[Tensor, Tensor]:
    """Stack each student layer's output next to that of the teacher layer it was copied from: ``hidden_states[0]``
    is the embedding output, so ``student_hidden_states[k + 1]`` pairs with ``teacher_hidden_states[layers[k]]``.
    """
    layers = list(layers)
    if len(student_hidden_states) != len(layers) + 1:
        raise DistillError(f"expected {len(layers) + 1} student hidden states (embeddings + {len(layers)} "
                           f"layers), got {len(student_hidden_states)}")
    if not layers or max(layers) >= len(teacher_hidden_states) or min(layers) < 1:
        raise DistillError(f"layers {layers} do not index the teacher's {len(teacher_hidden_states) - 1} layers")
    return torch.stack(list(student_hidden_states[1:])), torch.stack([teacher_hidden_states[n] for n in layers])


def hidden_state_cosine(student_hidden: Tensor, teacher_hidden: Tensor, attention_mask: Tensor) -> Tensor:
    """1 - cos over the real tokens' vectors, [layers, batch, tokens, hidden]: padding would dilute their signal."""
    keep = torch.broadcast_to(attention_mask, student_hidden.shape[:-1]).bool()
    teacher_hidden = teacher_hidden.detach().to(device=student_hidden.device, dtype=torch.float32)
    return cosine_alignment(student_hidden.float()[keep], teacher_hidden[keep])


def hidden_state_step_loss(model, batch, *, teacher_logits, args, teacher, layers, labelled=None) -> dict[str, Tensor]:
    """train.py's ``distillation_step_loss`` with "cos" on the aligned hidden states: the logits' terms come from
    ``distillation_loss`` with its own cosine weighted 0, and this cosine takes its weight."""
    ids, mask, index = batch["input_ids"], batch["attention_mask"], batch["index"].cpu()
    student_out = model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    with torch.no_grad():
        teacher_out = teacher(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    terms = distillation_loss(student_out.logits.float(), teacher_logits[index].to(ids.device), batch["labels"],
                              temperature=args.temperature, alpha_ce=args.alpha_ce, alpha_kd=args.alpha_kd,
                              alpha_cos=0.0, labelled=None if labelled is None else labelled[index])
    with torch.set_grad_enabled(args.alpha_cos > 0 and torch.is_grad_enabled()):
        terms["cos"] = hidden_state_cosine(*aligned_hidden_states(student_out.hidden_states,
                                                                  teacher_out.hidden_states, layers), mask)
    terms["loss"] = terms["loss"] + args.alpha_cos * terms["cos"]
    return terms


def check_same_tokenizer(student_tokenizer, teacher_tokenizer, student_source: str, teacher_source: str) -> None:
    """Refuse a student whose token ids the teacher, scoring those very ids, would read as other words."""
    student_vocab, teacher_vocab = student_tokenizer.get_vocab(), teacher_tokenizer.get_vocab()
    if student_vocab != teacher_vocab:
        differing = sum(1 for token, index in student_vocab.items() if teacher_vocab.get(token) != index)
        differing += len(set(teacher_vocab) - set(student_vocab))
        raise DistillError(f"the student's tokenizer ({student_source}) is not the teacher's ({teacher_source}): "
                           f"{differing} of {len(teacher_vocab)} vocabulary entries differ; build the student from "
                           f"the base model the teacher was fine-tuned from (--model).")
    probe = "Hello World, you IDIOT! naïve café 123"
    if student_tokenizer(probe)["input_ids"] != teacher_tokenizer(probe)["input_ids"]:
        raise DistillError(f"the student's tokenizer ({student_source}) splits text differently from the "
                           f"teacher's ({teacher_source}) although their vocabularies match (another "
                           f"normaliser or lower-casing?); use the teacher's base model as --model.")


def check_hidden_state_run(args, recipe) -> None:
    """Before any work: a student whose tokenizer is the teacher's, so the teacher can run on its token ids."""
    student_source = args.teacher if recipe.start == "teacher-layers" else resolve_model(args.model, args.cache_dir)
    if student_source != args.teacher:
        check_same_tokenizer(load_tokenizer(student_source), load_tokenizer(args.teacher), student_source,
                             args.teacher)
