"""Tests of model name resolution and of the loaders' errors, on tiny random BERT folders."""
import json
import time

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import BertForSequenceClassification, BertModel

import models.load
from conftest import tiny_bert_config, tiny_classifier, tiny_tokenizer
from models.load import ModelError, load_classifier, load_tokenizer, resolve_model


@pytest.fixture
def base_folder(tmp_path):
    """A tiny base encoder (no pooler, no head) with its tokenizer, as save_pretrained writes it."""
    folder = tmp_path / "base"
    torch.manual_seed(0)
    BertModel(tiny_bert_config(layers=2), add_pooling_layer=False).save_pretrained(folder)
    tiny_tokenizer().save_pretrained(folder)
    return folder


@pytest.fixture
def hub_offline(monkeypatch):
    monkeypatch.setattr(models.load, "hub_reachable", lambda: False)


def test_resolve_local_folder(base_folder):
    assert resolve_model(str(base_folder)) == str(base_folder)


def test_resolve_folder_without_config(tmp_path):
    with pytest.raises(ModelError, match="no config.json"):
        resolve_model(str(tmp_path))


def test_resolve_hub_name_passes_through_without_network():
    assert resolve_model("bert-base-uncased") == "bert-base-uncased"
    assert resolve_model("some-org/some-model") == "some-org/some-model"


def test_resolve_embedded_name_uses_the_given_cache(tmp_path):
    converted = tmp_path / "models" / "e5-small"
    converted.mkdir(parents=True)  # an existing conversion: no download, no conversion
    assert resolve_model("e5-small", cache_dir=tmp_path) == str(converted)


def test_load_classifier_from_base_encoder_keeps_encoder_weights(base_folder):
    model = load_classifier(str(base_folder), num_labels=2)
    assert isinstance(model, BertForSequenceClassification) and model.config.num_labels == 2
    saved = load_file(base_folder / "model.safetensors")
    torch.testing.assert_close(model.bert.encoder.layer[1].output.dense.weight,
                               saved["encoder.layer.1.output.dense.weight"])


def test_load_classifier_keeps_a_trained_head(tmp_path):
    trained = tiny_classifier(layers=2)
    trained.save_pretrained(tmp_path)
    model = load_classifier(str(tmp_path))
    torch.testing.assert_close(model.classifier.weight, trained.classifier.weight)


def test_load_tokenizer_from_local_folder(base_folder):
    tokenizer = load_tokenizer(str(base_folder))
    assert tokenizer.convert_ids_to_tokens(tokenizer("you idiot")["input_ids"]) == [
        "[CLS]", "you", "idiot", "[SEP]"]


def test_load_tokenizer_refuses_a_folder_without_tokenizer_files(base_folder):
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (base_folder / name).unlink()
    with pytest.raises(ModelError, match="no tokenizer"):
        load_tokenizer(str(base_folder))


def test_corrupt_safetensors_is_a_clear_error(base_folder):
    (base_folder / "model.safetensors").write_bytes(b"this is not a safetensors file" * 10)
    with pytest.raises(ModelError, match="corrupt or truncated"):
        load_classifier(str(base_folder))


def test_config_that_does_not_fit_the_weights_is_an_error(base_folder):
    config = json.loads((base_folder / "config.json").read_text())
    config["hidden_size"] = 48  # transformers alone would re-initialise the mismatched tensors
    (base_folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match=r"do not fit .*checkpoint \(32,\) vs config \(48,\)"):
        load_classifier(str(base_folder))


def test_weights_of_another_architecture_are_an_error(base_folder):
    save_file({"some.other.weight": torch.zeros(3)}, base_folder / "model.safetensors")
    with pytest.raises(ModelError, match="lacks .* encoder weights"):
        load_classifier(str(base_folder))


def test_pickled_weights_are_never_loaded(base_folder):
    (base_folder / "model.safetensors").rename(base_folder / "pytorch_model.bin")
    with pytest.raises(ModelError, match="model.safetensors"):
        load_classifier(str(base_folder))


def test_unreachable_hub_fails_fast_with_a_hint(hub_offline):
    started = time.perf_counter()
    for load in (load_classifier, load_tokenizer):
        with pytest.raises(ModelError, match="may be offline.*Pass e5-small, minilm or a local folder"):
            load("no-such-org/no-such-model-4f1c")
    assert time.perf_counter() - started < 10  # the hub client alone retries for about a minute


@pytest.mark.assets
def test_e5_small_name_loads_the_embedded_teacher():
    folder = resolve_model("e5-small")
    model = load_classifier("e5-small")
    assert isinstance(model, BertForSequenceClassification) and model.config.num_hidden_layers == 12
    assert len(load_tokenizer(folder)) == model.config.vocab_size == 47284
