"""The WSGI entry for production servers: ``waitress-serve --threads 8 --port 8080 webapp.wsgi:app``.

A WSGI server imports this module and serves ``app``; it is configured by environment variables
because such servers take no application flags:

* DVL_MODEL: run folder to serve (default: the best run in DVL_RESULTS, results/results.json);
* DVL_THRESHOLD: decision threshold (default: the run's validation_threshold);
* DVL_RUNS_DIR: runs for the compare view (default: runs; empty: only the served model);
* DVL_PRECISION: fp32, bf16, onnx, int8 or auto (default: auto, see models/inference.py);
* DVL_BATCHING: 1 to batch concurrent requests, 0 to run one forward pass per request (default:
  1 with a GPU, 0 on a CPU, see webapp/batching.py ``on_by_default``);
* DVL_MAX_BATCH_SIZE, DVL_MAX_WAIT_MS, DVL_MAX_QUEUE: the batching settings (webapp/batching.py);
* DVL_TORCH_THREADS: intra-op threads per forward pass (default: all cores with batching, else 1).
"""
import os

from models.inference import PRECISIONS
from webapp.app import make_app
from webapp.batching import BatchSettings, on_by_default, with_batching
from webapp.predict import ModelLoadError, load_predictors, resolve_model_folder, set_serving_threads


def app_from_environment(environ=os.environ):
    """The app configured by the DVL_* variables; a ModelLoadError names the bad one."""
    defaults = BatchSettings()
    try:
        threshold = float(environ["DVL_THRESHOLD"]) if environ.get("DVL_THRESHOLD") else None
        torch_threads = int(environ["DVL_TORCH_THREADS"]) if environ.get("DVL_TORCH_THREADS") else None
        batching_on = environ.get("DVL_BATCHING") or ("1" if on_by_default() else "0")
        if batching_on not in ("0", "1"):
            raise ValueError(f"DVL_BATCHING={batching_on!r}")
        batching = None if batching_on == "0" else BatchSettings(
            int(environ.get("DVL_MAX_BATCH_SIZE") or defaults.max_batch_size),
            float(environ.get("DVL_MAX_WAIT_MS") or defaults.max_wait_ms),
            int(environ.get("DVL_MAX_QUEUE") or defaults.max_queue))
    except ValueError as error:
        raise ModelLoadError(f"a DVL_* setting is malformed ({error}): DVL_THRESHOLD and DVL_MAX_WAIT_MS "
                             f"take numbers, the other DVL_MAX_* and DVL_TORCH_THREADS integers, DVL_BATCHING 0 or 1") from error
    precision = environ.get("DVL_PRECISION") or "auto"
    if precision not in PRECISIONS:
        raise ModelLoadError(f"DVL_PRECISION must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    set_serving_threads(torch_threads, batching=batching is not None)
    model_folder = resolve_model_folder(environ.get("DVL_MODEL"),
                                        environ.get("DVL_RESULTS") or "results/results.json")
    predictors, served = load_predictors(model_folder, threshold=threshold,
                                         runs_dir=environ.get("DVL_RUNS_DIR", "runs") or None,
                                         precision=precision)
    return make_app(with_batching(predictors, batching), served)


app = app_from_environment()
