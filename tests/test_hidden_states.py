"""DistilBERT's cosine on hidden states (experiments/hidden_states.py): each kept student layer is aligned with
the teacher layer it was copied from, padding left out, through ``python -m experiments.train_extras --cos-on hidden``.
"""
import json

import pytest
import torch
import torch.nn.functional as F
from transformers import BertConfig, BertForSequenceClassification

import train
from conftest import TINY_WORDS, tiny_classifier, tiny_tokenizer
from distill import DistillError
from distill.loss import cosine_alignment
from distill.student import build_student
from experiments import train_extras
from experiments.hidden_states import (aligned_hidden_states, check_same_tokenizer, hidden_state_cosine,
                                       hidden_state_step_loss)
from test_train_cli import args_for, world  # noqa: F401 - the tiny CSV, teacher and base of the CLI tests


def test_hidden_state_cosine_ignores_masked_positions():
    torch.manual_seed(17)
    teacher_hidden = torch.randn(2, 5, 8)
    attention_mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    student_hidden = teacher_hidden.clone()
    student_hidden[0, 3:] = -teacher_hidden[0, 3:]  # padding positions point the opposite way
    assert abs(hidden_state_cosine(student_hidden, teacher_hidden, attention_mask).item()) < 1e-6
    # Without the mask, 2 of the 10 vectors are opposite: cosine loss 2 each, mean 0.4.
    assert cosine_alignment(student_hidden, teacher_hidden).item() == pytest.approx(0.4, abs=1e-6)


def test_mask_broadcasts_over_stacked_layers():
    torch.manual_seed(18)
    student, teacher = torch.randn(3, 2, 4, 8), torch.randn(3, 2, 4, 8)
    mask = torch.tensor([[1, 1, 0, 0], [1, 0, 0, 0]])
    keep = mask.bool().expand(3, 2, 4)
    expected = (1 - F.cosine_similarity(student[keep], teacher[keep], dim=-1)).mean()
    assert torch.allclose(hidden_state_cosine(student, teacher, mask), expected)


def test_aligned_hidden_states_pair_student_layers_with_their_source_layers():
    # Tensor i of each tuple is filled with i (teacher) or 100 + i (student), to see who pairs with whom.
    teacher_states = tuple(torch.full((2, 3, 4), float(i)) for i in range(13))
    student_states = tuple(torch.full((2, 3, 4), 100.0 + i) for i in range(4))
    student, teacher = aligned_hidden_states(student_states, teacher_states, [2, 8, 12])
    assert student.shape == teacher.shape == (3, 2, 3, 4)
    assert student[:, 0, 0, 0].tolist() == [101.0, 102.0, 103.0]
    assert teacher[:, 0, 0, 0].tolist() == [2.0, 8.0, 12.0]
    with pytest.raises(DistillError, match="expected 4 student hidden states"):
        aligned_hidden_states(student_states[:3], teacher_states, [2, 8, 12])


def test_aligned_hidden_states_rejects_layers_the_teacher_does_not_have():
    states = [torch.zeros(1, 2, 4) for _ in range(5)]  # embeddings + 4 layers
    for layers in ([], [0, 2], [2, 5]):
        with pytest.raises(DistillError, match=r"do not index the teacher's 4 layers"):
            aligned_hidden_states(states[:len(layers) + 1], states, layers)
    student, teacher = aligned_hidden_states(states[:3], states, [1, 4])
    assert student.shape == teacher.shape == (2, 1, 2, 4)


def test_first_student_layer_of_an_odd_student_matches_the_teacher_exactly():
    torch.manual_seed(19)
    config = BertConfig(vocab_size=100, hidden_size=32, num_attention_heads=2, intermediate_size=64,
                        num_hidden_layers=4)
    teacher = BertForSequenceClassification(config).eval()
    layers = [1, 3]
    student = build_student(teacher, layers).eval()
    input_ids = torch.randint(5, 100, (2, 6))
    attention_mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1] * 6])
    with torch.no_grad():
        student_out = student(input_ids, attention_mask=attention_mask, output_hidden_states=True)
        teacher_out = teacher(input_ids, attention_mask=attention_mask, output_hidden_states=True)
    student_hidden, teacher_hidden = aligned_hidden_states(student_out.hidden_states,
                                                           teacher_out.hidden_states, layers)
    # Layer 1 sees the same embeddings in both models; layer 3 sees layer 1's output, not layer 2's.
    assert torch.equal(student_hidden[0], teacher_hidden[0])
    assert not torch.allclose(student_hidden[1], teacher_hidden[1])
    first = hidden_state_cosine(student_hidden[0], teacher_hidden[0], attention_mask)
    second = hidden_state_cosine(student_hidden[1], teacher_hidden[1], attention_mask)
    assert abs(first.item()) < 1e-6 and second.item() > 1e-6


def test_bf16_teacher_hidden_states_are_read_in_fp32():
    student_hidden = torch.randn(2, 6, 4, 8)
    teacher_hidden = torch.randn(2, 6, 4, 8).to(torch.bfloat16)
    mask = torch.ones(6, 4)
    from_bf16 = hidden_state_cosine(student_hidden, teacher_hidden, mask)
    torch.testing.assert_close(from_bf16, hidden_state_cosine(student_hidden, teacher_hidden.float(), mask),
                               rtol=0, atol=0)
    assert from_bf16.dtype == torch.float32


def test_the_step_keeps_train_pys_ce_and_kd_and_puts_its_cosine_weight_on_the_hidden_states():
    teacher = tiny_classifier(layers=4, seed=0).eval()
    layers = [1, 3]
    student = build_student(teacher, layers)
    batch = {"input_ids": torch.tensor([[2, 5, 6, 3, 0], [2, 7, 8, 9, 3]]),
             "attention_mask": torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]]),
             "labels": torch.tensor([0, 1]), "index": torch.tensor([1, 0])}
    teacher_logits = torch.tensor([[2.0, -1.0], [-0.5, 1.5]])
    args = train.parse_args(["--method", "odd"])
    torch.manual_seed(0)  # the same dropout masks in both steps
    logits_step = train.distillation_step_loss(student, batch, teacher_logits=teacher_logits, args=args)
    torch.manual_seed(0)
    hidden_step = hidden_state_step_loss(student, batch, teacher_logits=teacher_logits, args=args, teacher=teacher,
                                         layers=layers)
    for term in ("ce", "kd"):
        torch.testing.assert_close(hidden_step[term], logits_step[term], rtol=0, atol=0)
    torch.manual_seed(0)
    with torch.no_grad():
        expected_cos = hidden_state_cosine(*aligned_hidden_states(
            student(**{k: batch[k] for k in ("input_ids", "attention_mask")}, output_hidden_states=True).hidden_states,
            teacher(**{k: batch[k] for k in ("input_ids", "attention_mask")}, output_hidden_states=True).hidden_states,
            layers), batch["attention_mask"])
    torch.testing.assert_close(hidden_step["cos"].detach(), expected_cos)
    assert not torch.allclose(hidden_step["cos"], logits_step["cos"])
    torch.testing.assert_close(hidden_step["loss"], args.alpha_ce * hidden_step["ce"] + args.alpha_kd * hidden_step["kd"]
                               + args.alpha_cos * hidden_step["cos"])
    hidden_step["loss"].backward()
    assert all(parameter.grad is not None for parameter in student.bert.encoder.parameters())
    assert all(parameter.grad is None for parameter in teacher.parameters()), "the teacher is a fixed target"


def test_a_student_trains_with_the_hidden_state_cosine_and_records_it(world):
    train_extras.main(args_for("odd", "--cos-on", "hidden"))
    history = json.loads((world / "runs" / "odd" / "history.json").read_text())
    assert history["args"]["cos_on"] == "hidden" and history["layers"] == [1, 3]
    assert all("cos" in step and step["cos"] >= 0 for step in history["steps"])


def test_a_student_tokenizer_that_is_the_teachers_passes():
    check_same_tokenizer(tiny_tokenizer(), tiny_tokenizer(), "student", "teacher")


def test_a_student_tokenizer_with_other_ids_is_refused_and_the_differences_counted():
    swapped = [TINY_WORDS[1], TINY_WORDS[0], *TINY_WORDS[2:]]  # two words trade ids
    with pytest.raises(DistillError, match=rf"\(base\) is not the teacher's \(runs/teacher\): 2 of {len(TINY_WORDS) + 4} "):
        check_same_tokenizer(tiny_tokenizer(swapped), tiny_tokenizer(), "base", "runs/teacher")
    with pytest.raises(DistillError, match=rf": 1 of {len(TINY_WORDS) + 5} vocabulary entries differ"):
        check_same_tokenizer(tiny_tokenizer(), tiny_tokenizer([*TINY_WORDS, "extra"]), "base", "runs/teacher")


def test_a_student_tokenizer_that_splits_text_differently_is_refused():
    with pytest.raises(DistillError, match=r"\(cased\) splits text differently from the teacher's \(runs/teacher\)"):
        check_same_tokenizer(tiny_tokenizer(lowercase=False), tiny_tokenizer(), "cased", "runs/teacher")
