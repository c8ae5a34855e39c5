"""--soft-labels-from (experiments/ensemble_teacher.py): a student distilled from the averaged logits of several
teachers (an ensemble).

Its layers still come from --teacher, so against the plain student it changes the soft labels only.
"""
import json
from types import SimpleNamespace

import pytest
import torch

import train
from report.model_card import model_card
from conftest import TINY_WORDS, tiny_classifier, tiny_tokenizer
from distill import DistillError
from distill.student import build_student
from experiments import train_extras
from experiments.ensemble_teacher import EnsembleSoftLabels
from models.load import ModelError
from test_train_cli import args_for, save_tiny_model, world  # noqa: F401 - the tiny CSV and models of the CLI tests
from test_training import CPU
from training.batching import encode_texts
from training.loop import EncodedSplit, predict_logits

TEACHERS = ("teacher", "teacher-seed1", "teacher-seed2")


def test_the_soft_labels_are_the_teachers_averaged_logits_each_cached(tmp_path):
    texts = [" ".join(TINY_WORDS[i % 7:i % 7 + 3 + i % 5]) for i in range(20)]
    tokenizer, args = tiny_tokenizer(), SimpleNamespace(max_length=16, text_prefix="", cache_dir=tmp_path)
    split = EncodedSplit(encode_texts(tokenizer, texts, 16), [0] * len(texts))
    models = []
    for seed, name in enumerate(TEACHERS):
        models.append(tiny_classifier(layers=2, seed=seed).eval())
        models[-1].save_pretrained(tmp_path / name)
        tokenizer.save_pretrained(tmp_path / name)
    averaged = EnsembleSoftLabels([str(tmp_path / name) for name in TEACHERS])(texts, args, env=CPU)
    each = [predict_logits(model, split, 0, torch.device("cpu")) for model in models]
    torch.testing.assert_close(averaged, torch.stack(each).mean(dim=0))
    assert not torch.allclose(averaged, each[0])
    assert len(list((tmp_path / "teacher-logits").iterdir())) == 3, "one cache file per teacher, reused by every student"
    assert torch.equal(train.teacher_soft_labels(str(tmp_path / "teacher"), models[0], texts, args, env=CPU), each[0]), \
        "one teacher's logits are used as they are, from the same cache"
    assert len(list((tmp_path / "teacher-logits").iterdir())) == 3


def test_an_ensemble_student_copies_its_layers_from_teacher_and_learns_from_the_average(world, monkeypatch):
    for seed, name in enumerate(TEACHERS[1:], start=5):
        save_tiny_model(world / name, layers=4, seed=seed)
    targets = []
    real_loss = train.distillation_loss
    monkeypatch.setattr(train, "distillation_loss",
                        lambda student, teacher_logits, *args, **kwargs: targets.append(teacher_logits)
                        or real_loss(student, teacher_logits, *args, **kwargs))
    argv = args_for("odd", "--soft-labels-from", "teacher, teacher-seed1,teacher-seed2", "--batch-size", "400")
    args = train_extras.parse_args(argv)[1]
    assert args.soft_labels_from == "teacher,teacher-seed1,teacher-seed2"
    student = train.build_model(args, train.RECIPES["odd"]).model
    expected = build_student(train.load_classifier("teacher"), [1, 3])
    assert all(torch.equal(a, b) for a, b in zip(student.state_dict().values(), expected.state_dict().values()))

    train_extras.main(argv)
    history = json.loads((world / "runs" / "odd" / "history.json").read_text())
    assert history["args"]["soft_labels_from"] == "teacher,teacher-seed1,teacher-seed2"
    splits_encoded = train.EncodedSplit(
        train.encode_texts(train.load_tokenizer("teacher"), train.load_splits("comments.csv").train.texts, 16),
        [0] * history["data"]["train"]["size"])
    averaged = torch.stack([predict_logits(train.load_classifier(name), splits_encoded, 0, torch.device("cpu"))
                            for name in TEACHERS]).mean(dim=0)
    seen = torch.cat(targets)
    assert seen.shape == averaged.shape
    torch.testing.assert_close(seen.sort(dim=0).values, averaged.sort(dim=0).values)
    assert "its soft labels the averaged logits of the teachers teacher,teacher-seed1,teacher-seed2" in \
        model_card("odd", history)


@pytest.mark.parametrize("argv, message", [
    (["--method", "teacher", "--soft-labels-from", "a,b"], "--soft-labels-from needs a method with a distillation"),
    (["--method", "odd", "--soft-labels-from", "a,b", "--cos-on", "hidden"], "use --cos-on logits"),
])
def test_ensemble_flags_that_cannot_work_are_refused_at_parse_time(argv, message, capsys):
    with pytest.raises(SystemExit):
        train_extras.parse_args(argv)  # train.py's flags and the extras'
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1


def test_every_ensemble_teacher_is_checked_before_any_work(world):
    with pytest.raises(ModelError, match="no fine-tuned teacher in teacher-seed1"):
        train_extras.main(args_for("odd", "--soft-labels-from", "teacher,teacher-seed1"))
    save_tiny_model(world / "teacher-seed1", layers=4, seed=3)
    (world / "teacher-seed1" / "history.json").write_text(json.dumps({"args": {"text_prefix": "query: "}}))
    with pytest.raises(ModelError, match="the teacher teacher-seed1 was trained with --text-prefix 'query: '"):
        train_extras.main(args_for("odd", "--soft-labels-from", "teacher,teacher-seed1"))
    assert not (world / "runs").exists()


def test_a_teacher_with_another_vocabulary_teaches_on_its_own_tokens(world, monkeypatch):
    """A teacher passes on one pair of logits per comment, so it reads each comment with its own tokenizer."""
    save_tiny_model(world / "other", layers=4, seed=3)
    other_tokenizer = tiny_tokenizer(list(reversed(TINY_WORDS)))
    other_tokenizer.save_pretrained(world / "other")
    targets = []
    real_loss = train.distillation_loss
    monkeypatch.setattr(train, "distillation_loss",
                        lambda student, teacher_logits, *args, **kwargs: targets.append(teacher_logits)
                        or real_loss(student, teacher_logits, *args, **kwargs))
    train_extras.main(args_for("odd", "--soft-labels-from", "teacher,other", "--batch-size", "400"))
    texts = train.load_splits("comments.csv").train.texts
    expected = torch.stack([
        predict_logits(train.load_classifier(name), EncodedSplit(encode_texts(tokenizer, texts, 16), [0] * len(texts)),
                       0, torch.device("cpu"))
        for name, tokenizer in (("teacher", train.load_tokenizer("teacher")), ("other", other_tokenizer))]).mean(dim=0)
    torch.testing.assert_close(torch.cat(targets).sort(dim=0).values, expected.sort(dim=0).values)
    with pytest.raises(DistillError, match=r"is not the teacher's \(other\)"):  # its hidden states need our ids
        train_extras.main(args_for("lora-kd", "--teacher", "other", "--cos-on", "hidden"))


