"""The distillation objective, three terms, each returned under its own name so that the training loop
can log it every step (as Hugging Face's ``distiller.py`` does, though there "ce" is the soft-target term):

- "ce": cross-entropy with the true labels; a ``labelled`` mask keeps out unlabelled (transfer set) examples.
- "kd": Hinton et al. 2015 (arXiv:1503.02531), section 2: the KL divergence from the teacher's to the
  student's distribution, both softened by a temperature T, times T².
- "cos": Sanh et al. 2019, DistilBERT (arXiv:1910.01108), section 3: a cosine embedding loss that aligns
  the direction of the student's vectors with the teacher's: here its logits (experiments/hidden_states.py
  aligns hidden states, as DistilBERT does).
"""
import torch
import torch.nn.functional as F
from torch import Tensor


def temperature_kl(student_logits: Tensor, teacher_logits: Tensor, temperature: float) -> Tensor:
    """KL(teacher_T || student_T) averaged over the batch, times T² (Hinton et al. 2015, section 2).

    T > 1 softens both distributions, so the teacher's small probabilities for the wrong classes ("dark
    knowledge") carry weight; the gradient scales as 1/T², which T² undoes. KL is the soft-target cross-entropy
    less the teacher's entropy: the same gradient, but 0 at a perfect match, so the logged value reads well.
    """
    student_log_probs = F.log_softmax(student_logits / temperature, dim=-1)
    teacher_probs = F.softmax(teacher_logits / temperature, dim=-1)
    return F.kl_div(student_log_probs, teacher_probs, reduction="batchmean") * temperature ** 2


def cosine_alignment(student_vectors: Tensor, teacher_vectors: Tensor) -> Tensor:
    """Mean of 1 - cos(student, teacher) over the vectors in the last dimension (DistilBERT's L_cos)."""
    student_vectors = student_vectors.reshape(-1, student_vectors.size(-1))
    teacher_vectors = teacher_vectors.reshape(-1, teacher_vectors.size(-1))
    same_direction = student_vectors.new_ones(student_vectors.size(0))
    return F.cosine_embedding_loss(student_vectors, teacher_vectors, same_direction)


def labelled_cross_entropy(logits: Tensor, labels: Tensor, labelled: Tensor) -> Tensor:
    """Cross-entropy over the ``labelled`` examples only (the rest get weight 0); none labelled gives 0, not NaN."""
    per_example = F.cross_entropy(logits, labels, reduction="none")
    weights = labelled.to(per_example.dtype)
    return (per_example * weights).sum() / weights.sum().clamp(min=1)


def distillation_loss(student_logits: Tensor, teacher_logits: Tensor, labels: Tensor, *, temperature: float = 2.0,
                      alpha_ce: float = 0.5, alpha_kd: float = 0.5, alpha_cos: float = 0.1,
                      labelled: Tensor | None = None) -> dict[str, Tensor]:
    """The weighted distillation loss under "loss", and each unweighted term under "ce", "kd", "cos".

    ``loss = alpha_ce * ce + alpha_kd * kd + alpha_cos * cos``. The cosine compares the logits (on two classes,
    the student's whole output). The teacher's logits are detached: they are a fixed target. Why the defaults:
    - temperature=2.0: a fine-tuned two-class teacher is often near-certain, and at T=1 its soft target
      says little more than the hard label. T divides the log-odds, so T=2 takes the square root of the odds:
      p=0.99 becomes p≈0.91. Much higher T flattens every target towards 0.5 and tends to matching raw
      logits, noise included (Hinton et al., section 2.1).
    - alpha_ce=0.5, alpha_kd=0.5: the teacher was fine-tuned on these same examples, so its soft labels are
      wrong wherever it memorised noise; half the weight on the true labels keeps the student from learning
      only its mistakes, and the T² factor makes both halves' gradients comparable. Hinton et al. preferred
      a lower hard-label weight; alpha_ce=0.1, alpha_kd=0.9 is the natural ablation.
    - alpha_cos=0.1: DistilBERT weighted its cosine 1 in 8 (5/2/1 for soft targets/MLM/cosine). On two
      logits it largely repeats the KL and pins the mean logit, which softmax ignores: a small nudge only.
    """
    # Softmax, logs and sums in float32 even when the model runs in half precision.
    student_logits = student_logits.float()
    teacher_logits = teacher_logits.detach().to(device=student_logits.device, dtype=torch.float32)
    # A term enters the autograd graph only if it has weight in the loss; a zero-weight one is only logged.
    grad_enabled = torch.is_grad_enabled()
    with torch.set_grad_enabled(alpha_ce > 0 and grad_enabled):
        ce = (F.cross_entropy(student_logits, labels) if labelled is None
              else labelled_cross_entropy(student_logits, labels, labelled.to(student_logits.device)))
    with torch.set_grad_enabled(alpha_kd > 0 and grad_enabled):
        kd = temperature_kl(student_logits, teacher_logits, temperature)
    with torch.set_grad_enabled(alpha_cos > 0 and grad_enabled):
        cos = cosine_alignment(student_logits, teacher_logits)
    loss = alpha_ce * ce + alpha_kd * kd + alpha_cos * cos
    return {"loss": loss, "ce": ce, "kd": kd, "cos": cos}

