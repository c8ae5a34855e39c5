"""Serve the classifier: ``python -m webapp [--model runs/even] [--port 8080] [--server waitress]``.

Without --model the app serves the study's answer from results/results.json (the best 6-layer
student's run with the best validation macro-F1, see ``best_run``), and the compare view shows
every trained run under runs/.
"""
import argparse
import sys

import bottle
import waitress

from models.inference import PRECISIONS
from webapp.app import MAX_BODY_BYTES, make_app
from webapp.batching import BatchSettings, on_by_default, with_batching
from webapp.predict import ModelLoadError, load_predictors, resolve_model_folder, set_serving_threads

# waitress reads a whole request before the app sees it; past this size it refuses the request
# itself, so an absurd upload never even fills a temporary file. Up to it the app answers with
# its own 413 message.
WAITRESS_MAX_BODY_BYTES = 4 * MAX_BODY_BYTES


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m webapp", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="run folder to serve (default: best run in --results)")
    parser.add_argument("--threshold", type=float,
                        help="decision threshold (default: the run's validation_threshold)")
    parser.add_argument("--results", default="results/results.json",
                        help="evaluate.py's results, used to pick the default model")
    parser.add_argument("--runs-dir", default="runs", help="trained runs shown by the compare view")
    parser.add_argument("--no-compare", action="store_true",
                        help="load only the served model (faster start, less memory)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--server", choices=("waitress", "bottle"), default="waitress",
                        help="waitress (multi-threaded, for deployment) or bottle (single-threaded, local)")
    parser.add_argument("--threads", type=int, default=32,
                        help="waitress worker threads: requests in progress at once (default 32)")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="fp32, bf16, onnx or int8 (ONNX Runtime on the run's export: python -m "
                             "models.export_onnx RUN), or auto: int8 where the export measured it within 0.001 "
                             "validation ROC-AUC of fp32, else onnx where the run has a fresh export, else bf16 where "
                             "the hardware has it, else fp32 (models/inference.py)")
    batching = parser.add_argument_group("request batching (webapp/batching.py)")
    batching.add_argument("--batching", choices=("auto", "on", "off"), default="auto",
                          help="share forward passes among concurrent requests: on, off (one pass per request, in "
                               "the request's own thread), or auto: on with a GPU, off on a CPU (default)")
    batching.add_argument("--max-batch-size", type=int, default=BatchSettings.max_batch_size,
                          help="texts per shared forward pass (default %(default)s)")
    batching.add_argument("--max-wait-ms", type=float, default=BatchSettings.max_wait_ms,
                          help="how long a request waits for others to share its pass (default %(default)s)")
    batching.add_argument("--max-queue", type=int, default=BatchSettings.max_queue,
                          help="requests waiting before new ones get 503 (default %(default)s)")
    parser.add_argument("--torch-threads", type=int,
                        help="intra-op threads per forward pass (default: all cores with batching, 1 without; "
                             "see predict.set_serving_threads)")
    args = parser.parse_args(argv)
    try:
        batching = args.batching == "on" or (args.batching == "auto" and on_by_default())
        args.batching = BatchSettings(args.max_batch_size, args.max_wait_ms, args.max_queue) if batching else None
    except ValueError as error:
        parser.error(str(error))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    set_serving_threads(args.torch_threads, batching=args.batching is not None)
    try:
        model_folder = resolve_model_folder(args.model, args.results)
        predictors, served = load_predictors(model_folder, threshold=args.threshold,
                                             runs_dir=None if args.no_compare else args.runs_dir,
                                             precision=args.precision)
    except ModelLoadError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    app = make_app(with_batching(predictors, args.batching), served)
    batching = (f"batching up to {args.batching.max_batch_size} texts within {args.batching.max_wait_ms:g} ms"
                if args.batching else "no batching")
    print(f"serving {served} (threshold {predictors[served].threshold:.3f}, {predictors[served].precision}, "
          f"{batching}); compare view: {', '.join(predictors)}", flush=True)
    if args.server == "waitress":
        waitress.serve(app, host=args.host, port=args.port, threads=args.threads,
                       max_request_body_size=WAITRESS_MAX_BODY_BYTES)
    else:
        bottle.run(app, server="wsgiref", host=args.host, port=args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
