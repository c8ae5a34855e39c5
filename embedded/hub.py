"""Is the Hugging Face hub reachable from here?

Hub names (``bert-base-uncased``, ``tdavidson/hate_speech_offensive``) are the path for users
with internet. On a machine without it, the hub client retries with back-off for up to a
minute before failing; one quick request first lets us fail at once and say what to pass
instead (the embedded defaults, or a local folder).
"""
import functools

from huggingface_hub import constants, get_session, is_offline_mode

HUB_PROBE_TIMEOUT_S = 3.0


@functools.cache
def hub_reachable() -> bool:
    """Whether the hub answers one quick request (asked once per process).

    It uses the hub client's own HTTP session, so proxies and ``HF_ENDPOINT`` mirrors apply,
    and it honours ``HF_HUB_OFFLINE``. Any HTTP answer, even an error status, means reachable.
    """
    if is_offline_mode():
        return False
    try:
        get_session().head(constants.ENDPOINT, timeout=HUB_PROBE_TIMEOUT_S)
    except Exception:  # any transport failure (DNS, refused, timeout, TLS) means "not now"
        return False
    return True
