import math

import pytest
import torch
import torch.nn.functional as F
from transformers import BertConfig, BertForSequenceClassification

from distill import DistillError
from distill.loss import cosine_alignment, distillation_loss, temperature_kl
from distill.student import build_student


def random_logits(batch=6, labels=2, seed=0, scale=3.0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, labels, generator=generator) * scale


LABELS = torch.tensor([0, 1, 1, 0, 1, 0])


def test_kd_is_zero_when_the_student_matches_the_teacher():
    logits = random_logits()
    terms = distillation_loss(logits, logits.clone(), LABELS)
    assert abs(terms["kd"].item()) < 1e-7
    assert abs(terms["cos"].item()) < 1e-7


def test_ce_is_plain_cross_entropy_on_the_hard_labels():
    student, teacher = random_logits(seed=1), random_logits(seed=2)
    terms = distillation_loss(student, teacher, LABELS)
    assert torch.allclose(terms["ce"], F.cross_entropy(student, LABELS))


def test_kd_matches_a_hand_computation():
    # One example, two classes, T = 2: softmax by hand, KL = sum p log(p / q), times T².
    temperature = 2.0
    student, teacher = [1.0, 0.0], [0.0, 2.0]

    def softmax(logits):
        exps = [math.exp(z / temperature) for z in logits]
        return [e / sum(exps) for e in exps]

    p, q = softmax(teacher), softmax(student)
    expected = temperature ** 2 * sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))
    kd = temperature_kl(torch.tensor([student]), torch.tensor([teacher]), temperature)
    assert kd.item() == pytest.approx(expected, rel=1e-6)


def test_kd_is_averaged_over_the_batch_not_summed():
    student, teacher = random_logits(batch=4, seed=3), random_logits(batch=4, seed=4)
    doubled = temperature_kl(torch.cat([student, student]), torch.cat([teacher, teacher]), 2.0)
    assert torch.allclose(doubled, temperature_kl(student, teacher, 2.0))


def kd_gradient(student, teacher, temperature):
    student = student.clone().requires_grad_(True)
    temperature_kl(student, teacher, temperature).backward()
    return student.grad


def test_t_squared_keeps_the_kd_gradient_size_independent_of_temperature():
    # Hinton et al. 2015, section 2: the soft-target gradient scales as 1/T², hence the T² factor.
    student, teacher = random_logits(seed=5, scale=0.1), random_logits(seed=6, scale=0.1)
    norms = {t: kd_gradient(student, teacher, t).norm().item() for t in (1.0, 2.0, 4.0, 8.0)}
    assert max(norms.values()) / min(norms.values()) < 1.1
    # Without the T² factor the gradient at T=8 would be about 64 times smaller than at T=1.


def test_kd_gradient_is_t_times_the_softened_probability_gap():
    student, teacher = random_logits(seed=7), random_logits(seed=8)
    temperature = 3.0
    expected = temperature * (F.softmax(student / temperature, -1) - F.softmax(teacher / temperature, -1))
    expected /= student.size(0)
    assert torch.allclose(kd_gradient(student, teacher, temperature), expected, atol=1e-6)


def test_total_is_the_weighted_sum_of_the_logged_terms():
    student, teacher = random_logits(seed=9), random_logits(seed=10)
    terms = distillation_loss(student, teacher, LABELS, temperature=3.0, alpha_ce=0.2, alpha_kd=0.7,
                              alpha_cos=0.4)
    assert set(terms) == {"loss", "ce", "kd", "cos"}
    expected = 0.2 * terms["ce"] + 0.7 * terms["kd"] + 0.4 * terms["cos"]
    assert torch.allclose(terms["loss"], expected)
    assert terms["kd"].item() > 0 and terms["cos"].item() > 0


def test_zero_weight_terms_are_logged_but_get_no_gradient():
    student = random_logits(seed=11).requires_grad_(True)
    teacher = random_logits(seed=12)
    terms = distillation_loss(student, teacher, LABELS, alpha_ce=1.0, alpha_kd=0.0, alpha_cos=0.0)
    assert terms["kd"].item() > 0 and terms["cos"].item() > 0
    assert not terms["kd"].requires_grad and not terms["cos"].requires_grad
    terms["loss"].backward()
    ce_only = student.detach().clone().requires_grad_(True)
    F.cross_entropy(ce_only, LABELS).backward()
    assert torch.allclose(student.grad, ce_only.grad)


def test_no_gradient_reaches_the_teacher():
    student = random_logits(seed=13).requires_grad_(True)
    teacher = random_logits(seed=14).requires_grad_(True)
    distillation_loss(student, teacher, LABELS)["loss"].backward()
    assert student.grad is not None and teacher.grad is None


def test_cosine_on_logits_is_one_minus_the_mean_cosine():
    student, teacher = random_logits(seed=15), random_logits(seed=16)
    expected = (1 - F.cosine_similarity(student, teacher, dim=-1)).mean()
    assert torch.allclose(distillation_loss(student, teacher, LABELS)["cos"], expected)


# ---------------------------------------------------------------- found by mutation testing

def test_temperature_below_one_is_fine():
    assert torch.isfinite(distillation_loss(random_logits(), random_logits(seed=1), LABELS, temperature=0.5)["loss"])


def test_bf16_teacher_logits_are_read_in_fp32():
    student, teacher = random_logits(seed=3), random_logits(seed=4).to(torch.bfloat16)
    from_bf16 = distillation_loss(student, teacher, LABELS)
    from_fp32 = distillation_loss(student, teacher.float(), LABELS)
    for term in from_fp32:
        assert from_bf16[term].dtype == torch.float32
        torch.testing.assert_close(from_bf16[term], from_fp32[term], rtol=0, atol=0)


@pytest.mark.parametrize("only", ["alpha_ce", "alpha_kd", "alpha_cos"])
def test_each_weighted_term_alone_carries_the_gradient(only):
    weights = {"alpha_ce": 0.0, "alpha_kd": 0.0, "alpha_cos": 0.0, only: 0.5}
    student = random_logits(seed=5).requires_grad_(True)
    terms = distillation_loss(student, random_logits(seed=6), LABELS, **weights)
    term = {"alpha_ce": "ce", "alpha_kd": "kd", "alpha_cos": "cos"}[only]
    assert [name for name in ("ce", "kd", "cos") if terms[name].requires_grad] == [term]
    terms["loss"].backward()
    alone = student.detach().clone().requires_grad_(True)
    (0.5 * distillation_loss(alone, random_logits(seed=6), LABELS, **{**weights, only: 1.0})[term]).backward()
    torch.testing.assert_close(student.grad, alone.grad)


# ---- a transfer set: unlabelled examples get the teacher terms only

def test_unlabelled_examples_contribute_no_cross_entropy():
    torch.manual_seed(0)
    student = torch.randn(6, 2, requires_grad=True)
    teacher = torch.randn(6, 2)
    labelled = torch.tensor([True, True, True, False, False, False])
    labels = torch.tensor([0, 1, 1, 0, 0, 0])
    terms = distillation_loss(student, teacher, labels, labelled=labelled)
    torch.testing.assert_close(terms["ce"], F.cross_entropy(student[:3], labels[:3]))
    torch.testing.assert_close(terms["kd"], temperature_kl(student, teacher, 2.0), msg="KD over every example")
    (gradient,) = torch.autograd.grad(terms["ce"], student, retain_graph=True)
    assert torch.equal(gradient[3:], torch.zeros(3, 2)) and gradient[:3].abs().sum() > 0

    # Other placeholder labels change nothing: not the loss, not a single gradient.
    relabelled = distillation_loss(student, teacher, torch.tensor([0, 1, 1, 1, 1, 0]), labelled=labelled)
    for name in ("loss", "ce", "kd", "cos"):
        assert torch.equal(relabelled[name], terms[name]), name
    assert torch.equal(torch.autograd.grad(relabelled["loss"], student)[0], torch.autograd.grad(terms["loss"], student)[0])


def test_a_batch_of_unlabelled_comments_only_trains_on_the_teacher():
    torch.manual_seed(1)
    student, teacher = torch.randn(4, 2, requires_grad=True), torch.randn(4, 2)
    terms = distillation_loss(student, teacher, torch.zeros(4, dtype=torch.long), labelled=torch.zeros(4, dtype=torch.bool))
    assert terms["ce"].item() == 0.0 and torch.isfinite(terms["loss"])
    teacher_only = distillation_loss(student, teacher, torch.zeros(4, dtype=torch.long), alpha_ce=0.0)
    torch.testing.assert_close(terms["loss"], teacher_only["loss"])


def test_without_a_mask_every_example_is_labelled_exactly_as_before():
    torch.manual_seed(2)
    student, teacher, labels = torch.randn(5, 2), torch.randn(5, 2), torch.tensor([0, 1, 0, 1, 1])
    assert torch.equal(distillation_loss(student, teacher, labels)["ce"], F.cross_entropy(student, labels))
    torch.testing.assert_close(distillation_loss(student, teacher, labels, labelled=torch.ones(5, dtype=torch.bool))["ce"],
                               F.cross_entropy(student, labels))


def test_cosine_alignment_averages_over_every_vector_of_a_stacked_tensor():
    torch.manual_seed(20)
    student, teacher = torch.randn(2, 3, 4), torch.randn(2, 3, 4)  # e.g. [layers, tokens, hidden]
    expected = (1 - F.cosine_similarity(student.reshape(-1, 4), teacher.reshape(-1, 4), dim=-1)).mean()
    torch.testing.assert_close(cosine_alignment(student, teacher), expected)
