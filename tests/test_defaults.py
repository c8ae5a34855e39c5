"""One set of defaults: what the library functions do when called bare is what train.py's flags say.

A student who calls ``inject_lora(model)`` or ``distillation_loss(...)`` from a notebook should get
the settings that the README's runs used, and a change to one side must not leave the other behind.
The checks call the functions with and without the arguments, so they test behaviour, not signatures.
"""
import dataclasses

import torch

import train
from conftest import tiny_classifier
from distill.loss import distillation_loss
from lora.lora import LoRALinear, inject_lora
from test_training import tiny_split
from training.loop import TrainingConfig, predict_logits

FLAGS = train.parse_args(["--method", "odd"])


def test_training_config_defaults_are_the_flags_defaults():
    config = TrainingConfig()
    for field in ("batch_size", "warmup_ratio", "weight_decay", "max_grad_norm", "seed"):
        assert getattr(config, field) == getattr(FLAGS, field), field
    assert (config.epochs, config.lr) == (3, 5e-5), "BERT's fine-tuning recipe (Devlin et al. 2019)"
    assert config.bf16 is False, "the loop defaults to fp32; train.py opts into bf16 where the hardware has it"
    assert config.eval_batch_size == 64
    assert {f.name for f in dataclasses.fields(TrainingConfig)} == {
        "epochs", "lr", "batch_size", "warmup_ratio", "weight_decay", "max_grad_norm", "seed", "bf16",
        "eval_batch_size"}


def test_train_py_trains_in_bf16_by_default_only_where_the_hardware_multiplies_it(monkeypatch):
    """Emulated bf16 is many times slower than fp32 (an AVX2-only CPU), so it is on only where it is native."""
    for native in (False, True):
        monkeypatch.setattr(train, "bf16_is_native", lambda device: native)
        assert train.parse_args(["--method", "odd"]).bf16 is native
        assert train.parse_args(["--method", "odd", "--bf16"]).bf16 is True
        assert train.parse_args(["--method", "odd", "--no-bf16"]).bf16 is False


def test_predict_logits_defaults_to_fp32():
    model, split = tiny_classifier(), tiny_split(12)
    with torch.inference_mode():
        expected = torch.cat([model(input_ids=torch.tensor([ids])).logits for ids in split.token_ids])
    torch.testing.assert_close(predict_logits(model, split, 0, torch.device("cpu")), expected, rtol=1e-5, atol=1e-6)


def test_inject_lora_defaults_are_the_flags_defaults():
    model = tiny_classifier(layers=2)
    inject_lora(model)
    wrapped = {name.rpartition(".")[2]: module for name, module in model.named_modules()
               if isinstance(module, LoRALinear)}
    assert set(wrapped) == set(FLAGS.lora_targets.split(","))
    for layer in wrapped.values():
        assert (layer.r, layer.alpha, layer.lora_dropout.p) == (FLAGS.lora_r, FLAGS.lora_alpha, FLAGS.lora_dropout)


def test_distillation_loss_defaults_are_the_flags_defaults():
    generator = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(6, 2, generator=generator), torch.randn(6, 2, generator=generator)
    labels = torch.tensor([0, 1, 1, 0, 1, 0])
    bare = distillation_loss(student, teacher, labels)
    flags = distillation_loss(student, teacher, labels, temperature=FLAGS.temperature, alpha_ce=FLAGS.alpha_ce,
                              alpha_kd=FLAGS.alpha_kd, alpha_cos=FLAGS.alpha_cos)
    assert bare.keys() == flags.keys()
    for term in bare:
        torch.testing.assert_close(bare[term], flags[term], rtol=0, atol=0)
