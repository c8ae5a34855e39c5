"""The distillation objective: hard labels, the teacher's softened predictions, and cosine alignment.

Three terms, each returned under its own name so the training loop can log it at every step
(the way Hugging Face's distillation example, ``distiller.py``, logs its loss terms):

- "ce": cross-entropy between the student's predictions and the true labels.
- "kd": Hinton et al. 2015 (arXiv:1503.02531), section 2: the KL divergence from the
  teacher's to the student's distribution, both softened by a temperature T, times T².
- "cos": Sanh et al. 2019, DistilBERT (arXiv:1910.01108), section 3: a cosine embedding loss
  that aligns the direction of the student's vectors with the teacher's.

Note the naming: in ``distiller.py`` "ce" is the soft-target term and "mlm" the hard-label
one; here "ce" is the hard-label term and "kd" the soft-target term.

A batch may mix labelled examples with unlabelled ones (comments of a transfer set,
``data/transfer.py``): a per-example ``labelled`` mask keeps the unlabelled ones out of "ce", and
both teacher terms, which need no label, are taken over every example.
"""
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from distill import DistillError


def temperature_kl(student_logits: Tensor, teacher_logits: Tensor, temperature: float) -> Tensor:
    """KL(teacher_T || student_T) averaged over the batch, times T² (Hinton et al. 2015, section 2).

    Dividing logits by T > 1 softens both distributions, so the teacher's small probabilities
    for the wrong classes (its "dark knowledge") carry weight. The gradient of this KL with
    respect to the student's logits scales as 1/T², so multiplying by T² keeps its size, and
    hence its balance with the hard-label term, roughly unchanged when T changes. KL differs
    from the soft-target cross-entropy only by the teacher's entropy, a constant, so the
    gradient is the same, but KL is 0 at a perfect match, which makes the logged value readable.
    """
    student_log_probs = F.log_softmax(student_logits / temperature, dim=-1)
    teacher_probs = F.softmax(teacher_logits / temperature, dim=-1)
    return F.kl_div(student_log_probs, teacher_probs, reduction="batchmean") * temperature ** 2


def cosine_alignment(student_vectors: Tensor, teacher_vectors: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean of 1 - cos(student, teacher) over the vectors in the last dimension (DistilBERT's L_cos).

    ``mask`` (1 = keep), broadcastable to the leading dimensions of the vectors, drops padding
    positions, as DistilBERT does with the attention mask: padding vectors carry no meaning,
    and averaging them in would dilute the signal from the real tokens.
    """
    if mask is not None:
        keep = torch.broadcast_to(mask, student_vectors.shape[:-1]).bool()
        student_vectors, teacher_vectors = student_vectors[keep], teacher_vectors[keep]
    student_vectors = student_vectors.reshape(-1, student_vectors.size(-1))
    teacher_vectors = teacher_vectors.reshape(-1, teacher_vectors.size(-1))
    same_direction = student_vectors.new_ones(student_vectors.size(0))
    return F.cosine_embedding_loss(student_vectors, teacher_vectors, same_direction)


def aligned_hidden_states(student_hidden_states: Sequence[Tensor], teacher_hidden_states: Sequence[Tensor],
                          layers: Sequence[int]) -> tuple[Tensor, Tensor]:
    """Stack each student layer's output next to the output of the teacher layer it was copied from.

    Hugging Face's ``hidden_states`` (``output_hidden_states=True``) start with the embedding
    output at index 0, so the output of 1-based layer n is ``hidden_states[n]``: student layer
    k+1 (copied from teacher layer ``layers[k]``) pairs ``student_hidden_states[k + 1]`` with
    ``teacher_hidden_states[layers[k]]``. Returns two tensors of shape
    (len(layers), batch, seq, hidden), ready for ``distillation_loss(student_hidden=...,
    teacher_hidden=..., attention_mask=...)``. DistilBERT itself aligned only the last hidden
    states; for that, pass ``student_hidden_states[-1]`` and ``teacher_hidden_states[-1]`` instead.
    """
    layers = list(layers)
    if len(student_hidden_states) != len(layers) + 1:
        raise DistillError(f"expected {len(layers) + 1} student hidden states (embeddings + {len(layers)} "
                           f"layers), got {len(student_hidden_states)}")
    if not layers or max(layers) >= len(teacher_hidden_states) or min(layers) < 1:
        raise DistillError(f"layers {layers} do not index the teacher's {len(teacher_hidden_states) - 1} layers")
    student = torch.stack(list(student_hidden_states[1:]))
    teacher = torch.stack([teacher_hidden_states[layer] for layer in layers])
    return student, teacher


def labelled_cross_entropy(logits: Tensor, labels: Tensor, labelled: Tensor) -> Tensor:
    """Cross-entropy averaged over the examples where ``labelled`` is true, the others left out.

    An unlabelled example carries a placeholder label; its term is multiplied by 0, so neither
    the value nor any gradient depends on that placeholder. A batch without any labelled example
    gives 0, with no gradient at all (not NaN, which would stop the run).
    """
    per_example = F.cross_entropy(logits, labels, reduction="none")
    weights = labelled.to(per_example.dtype)
    return (per_example * weights).sum() / weights.sum().clamp(min=1)


def distillation_loss(student_logits: Tensor, teacher_logits: Tensor, labels: Tensor, *,
                      temperature: float = 2.0, alpha_ce: float = 0.5, alpha_kd: float = 0.5,
                      alpha_cos: float = 0.1, student_hidden: Tensor | None = None,
                      teacher_hidden: Tensor | None = None, attention_mask: Tensor | None = None,
                      labelled: Tensor | None = None) -> dict[str, Tensor]:
    """The weighted distillation loss under "loss", and each unweighted term under "ce", "kd", "cos".

    ``loss = alpha_ce * ce + alpha_kd * kd + alpha_cos * cos``. Logits are (batch, num_labels),
    labels (batch,). The cosine term compares the logits by default: on a two-class task they
    are the student's whole output, and cheap to cache; given ``student_hidden`` and ``teacher_hidden`` (same shape, hidden size
    last, e.g. from ``aligned_hidden_states``) it compares those instead, as DistilBERT does,
    skipping positions where ``attention_mask`` is 0. The teacher is a fixed target: its
    tensors are detached, so no gradient reaches it. ``labelled`` (batch,) bool marks the examples
    whose labels are real; "ce" is then averaged over those only (``labelled_cross_entropy``),
    while "kd" and "cos" take every example. Without it every example is labelled.

    Why the defaults:
    - temperature=2.0: a fine-tuned two-class teacher is often near-certain, and at T=1 its
      soft target then says little more than the hard label. For two classes T divides the
      log-odds, so T=2 takes the square root of the odds: p=0.99 (odds 99) becomes p≈0.91.
      Much higher T flattens every target towards 0.5 and, with the T² factor, tends to
      matching raw logits (Hinton et al., section 2.1), noise included.
    - alpha_ce=0.5, alpha_kd=0.5: the teacher was fine-tuned on these same training examples,
      so its soft labels are close to the hard ones and wrong wherever it memorised noise.
      Keeping half the weight on the true labels means the student never learns only the
      teacher's mistakes; thanks to the T² factor both halves have gradients of comparable
      size, so this is an even split. Hinton et al. found a lower hard-label weight best on
      their tasks; alpha_ce=0.1, alpha_kd=0.9 is the natural ablation.
    - alpha_cos=0.1: DistilBERT gave its cosine term 1 part in 8 (weights 5/2/1 for soft
      targets/MLM/cosine). On two logits the cosine largely repeats what KL already asks, and
      it also pins the mean logit, which softmax ignores, so it stays a small auxiliary nudge.

    A zero-weight term is still computed, so the log shows how it evolves, but outside the
    autograd graph: it costs a few operations on (batch, num_labels) tensors, and no backward
    work. All three terms are therefore always returned.
    """
    _check_settings(temperature, {"alpha_ce": alpha_ce, "alpha_kd": alpha_kd, "alpha_cos": alpha_cos})
    _check_logits_and_labels(student_logits, teacher_logits, labels)
    if labelled is not None and (labelled.shape != labels.shape or labelled.dtype != torch.bool):
        raise DistillError(f"labelled must be a bool tensor of shape {tuple(labels.shape)}, got {labelled.dtype} "
                           f"of shape {tuple(labelled.shape)}")
    # Softmax, logs and sums in float32 even when the model runs in half precision.
    student_logits = student_logits.float()
    teacher_logits = teacher_logits.detach().to(device=student_logits.device, dtype=torch.float32)
    if student_hidden is None and teacher_hidden is None:
        if attention_mask is not None:
            raise DistillError("attention_mask only applies to hidden states; pass student_hidden and "
                               "teacher_hidden too, or no mask for the cosine on logits")
        student_vectors, teacher_vectors = student_logits, teacher_logits
    else:
        _check_hidden(student_hidden, teacher_hidden, attention_mask)
        student_vectors = student_hidden.float()
        teacher_vectors = teacher_hidden.detach().to(device=student_vectors.device, dtype=torch.float32)

    with _in_graph_if(alpha_ce > 0):
        ce = (F.cross_entropy(student_logits, labels) if labelled is None
              else labelled_cross_entropy(student_logits, labels, labelled.to(student_logits.device)))
    with _in_graph_if(alpha_kd > 0):
        kd = temperature_kl(student_logits, teacher_logits, temperature)
    with _in_graph_if(alpha_cos > 0):
        cos = cosine_alignment(student_vectors, teacher_vectors, attention_mask)
    loss = alpha_ce * ce + alpha_kd * kd + alpha_cos * cos
    return {"loss": loss, "ce": ce, "kd": kd, "cos": cos}


def _in_graph_if(weighted: bool) -> torch.set_grad_enabled:
    """Record a term for backward only if it has weight in the loss (and gradients are on at all)."""
    return torch.set_grad_enabled(weighted and torch.is_grad_enabled())


def _check_settings(temperature: float, weights: dict[str, float]) -> None:
    if not isinstance(temperature, (int, float)) or not (0 < temperature < math.inf):
        raise DistillError(f"temperature must be a positive finite number, got {temperature!r}")
    for name, weight in weights.items():
        if not isinstance(weight, (int, float)) or not (0 <= weight < math.inf):
            raise DistillError(f"{name} must be a finite number >= 0, got {weight!r}")
    if not any(weights.values()):
        raise DistillError(f"all loss weights are zero ({', '.join(weights)}): nothing would train the "
                           f"student; set at least one of them above 0")


def _check_logits_and_labels(student_logits: Tensor, teacher_logits: Tensor, labels: Tensor) -> None:
    if student_logits.dim() != 2:
        raise DistillError(f"student logits must be (batch, num_labels), got shape {tuple(student_logits.shape)}")
    if teacher_logits.shape != student_logits.shape:
        raise DistillError(f"student logits have shape {tuple(student_logits.shape)} but teacher logits "
                           f"{tuple(teacher_logits.shape)}: the teacher's logits must cover the same examples, "
                           f"in the same order, with the same labels")
    batch, num_labels = student_logits.shape
    if labels.shape != (batch,) or labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise DistillError(f"labels must be an integer tensor of shape ({batch},), got {labels.dtype} "
                           f"of shape {tuple(labels.shape)}")
    if batch and not (0 <= int(labels.min()) and int(labels.max()) < num_labels):
        raise DistillError(f"labels must lie in 0..{num_labels - 1}, got values from {int(labels.min())} "
                           f"to {int(labels.max())}")


def _check_hidden(student_hidden: Tensor | None, teacher_hidden: Tensor | None,
                  attention_mask: Tensor | None) -> None:
    if student_hidden is None or teacher_hidden is None:
        raise DistillError("pass both student_hidden and teacher_hidden, or neither (cosine on logits)")
    if student_hidden.shape != teacher_hidden.shape:
        raise DistillError(f"student hidden states have shape {tuple(student_hidden.shape)} but teacher "
                           f"hidden states {tuple(teacher_hidden.shape)}; the cosine needs aligned vectors "
                           f"of the same size")
    if attention_mask is None:
        return
    try:
        keep = torch.broadcast_to(attention_mask, student_hidden.shape[:-1])
    except RuntimeError as error:
        raise DistillError(f"attention_mask of shape {tuple(attention_mask.shape)} does not fit hidden states "
                           f"of shape {tuple(student_hidden.shape)} (it must match all but the last "
                           f"dimension)") from error
    if not keep.any():
        raise DistillError("attention_mask masks out every position: there is nothing to align")
