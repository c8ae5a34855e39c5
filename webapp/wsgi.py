"""The WSGI entry for production servers: ``waitress-serve --threads 8 --port 8080 webapp.wsgi:app``.

A WSGI server imports this module and serves ``app``; it is configured by environment variables
because such servers take no application flags:

* DVL_MODEL: run folder to serve (default: the best run in DVL_RESULTS, results/results.json);
* DVL_THRESHOLD: decision threshold (default: the run's validation_threshold);
* DVL_RUNS_DIR: runs for the compare view (default: runs; empty: only the served model);
* DVL_TORCH_THREADS: intra-op threads per forward pass (default: 1).
"""
import os

from webapp.app import make_app
from webapp.predict import ModelLoadError, load_predictors, resolve_model_folder, set_serving_threads


def app_from_environment(environ=os.environ):
    """The app configured by the DVL_* variables; a ModelLoadError names the bad one."""
    try:
        threshold = float(environ["DVL_THRESHOLD"]) if environ.get("DVL_THRESHOLD") else None
        torch_threads = int(environ.get("DVL_TORCH_THREADS") or 1)
    except ValueError as error:
        raise ModelLoadError(f"DVL_THRESHOLD must be a number and DVL_TORCH_THREADS an integer "
                             f"({error})") from error
    set_serving_threads(torch_threads)
    model_folder = resolve_model_folder(environ.get("DVL_MODEL"),
                                        environ.get("DVL_RESULTS") or "results/results.json")
    predictors, served = load_predictors(model_folder, threshold=threshold,
                                         runs_dir=environ.get("DVL_RUNS_DIR", "runs") or None)
    return make_app(predictors, served)


app = app_from_environment()
