"""Serving a trained run: every precision, and request batching on against off, side by side in one run.

    python -m bench.serving --model runs/odd
    python -m bench.serving --model runs/odd --latency-comments 20 --auc-limit 100 --requests 40   # a quick check

For each precision of the predict path (``serving/precision.py``: fp32, bf16, and onnx and int8,
ONNX Runtime on the run's fp32 and int8 exports) it measures, on the run's own test split:

1. **the model**: milliseconds per comment at batch 1 (tokenisation included: what a request
   costs), each precision timing every comment in a block of its own, in two rounds that
   alternate the order (``model_latencies`` says why); and the test ROC-AUC, the largest change
   of a probability and the share of unchanged labels against fp32;
2. **the web app**, with request batching on and off: it starts ``python -m webapp --server
   waitress`` on a free loopback port and measures the HTTP p50 and p95 of one client sending one
   comment at a time, then the requests/s of 8 and of 32 concurrent keep-alive clients, counting
   every failed request.

The onnx and int8 rows need onnx and onnxruntime (requirements.txt); without them they are left out.
The run is exported as the server exports it on first serve (``serving.export_onnx.export_for_serving``,
into the run folder) when it has no fresh export yet, and every row, onnx included, goes through
``load_predictor(..., precision=...)``, the path of the web app and ``predict.py``.

The targets are for a 6-layer student on 2 CPU cores: model p50 at batch 1 <= 8 ms, HTTP p50
with one client <= 12 ms, >= 150 requests/s with 8 clients and no error, test ROC-AUC within
0.001 of fp32, each for what ``--precision auto`` serves on this machine, with the web app's
default batching there (``serving.batching.on_by_default``). The script prints
which precision the rule "fastest whose ROC-AUC stays within 0.001 of fp32" picks from the
measurements, and whether ``auto`` picks the same. Exits non-zero if any request failed.
"""
import argparse
import http.client
import json
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from bench.common import markdown_table, set_threads
from data.load import load_splits
from evaluate import dataset_args
from serving.batching import on_by_default
from serving.export_onnx import export_for_serving
from serving.precision import load_predictor
from training.metrics import binary_metrics
from webapp.app import MAX_TEXT_CHARS

REPO_ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
PRECISIONS = ("fp32", "bf16", "onnx", "int8")
EXPORTED = ("onnx", "int8")
AUC_TOLERANCE = 0.001
TARGET_MODEL_P50_MS = 8.0
TARGET_HTTP_P50_MS = 12.0
TARGET_REQUESTS_PER_S_8 = 150.0


# --- the model --------------------------------------------------------------------------------

def percentile_ms(latencies_s: list[float], percent: int) -> float:
    return 1000 * statistics.quantiles(latencies_s, n=100, method="inclusive")[percent - 1]


def model_latencies(scorers: dict, comments: list[str], rounds: int = 2) -> dict[str, list[float]]:
    """Seconds per comment at batch 1: each variant times every comment in a block, after its own warm-up.

    Blocks, not the variants taking turns comment by comment: after a call, PyTorch's OpenMP
    threads keep spinning for a while, waiting for the next one. Taking turns, each variant would
    run beside the spinning threads of the one before and pay for them (ONNX Runtime on 2 cores
    was markedly slower that way than in a block of its own), which a server that runs one
    precision never does. The rounds alternate the order of the variants, so that a slow drift
    of the machine falls on all of them.
    """
    seconds = {name: [] for name in scorers}
    for round_index in range(rounds):
        for name in (list(scorers) if round_index % 2 == 0 else list(reversed(scorers))):
            for text in comments[:10]:
                scorers[name]([text])
            for text in comments:
                start = time.perf_counter()
                scorers[name]([text])
                seconds[name].append(time.perf_counter() - start)
    return seconds


def model_table(scorers: dict, comments: list[str], texts: list[str], labels: list[int],
                threshold: float) -> tuple[str, dict]:
    latencies = model_latencies(scorers, comments)
    probabilities = {}
    for name, score in scorers.items():
        print(f"scoring the test split: {name}", file=sys.stderr, flush=True)
        probabilities[name] = score(texts)
    reference = probabilities["fp32"]
    figures, rows = {}, []
    for name in scorers:
        auc = binary_metrics(labels, probabilities[name])["roc_auc"]
        figures[name] = {"p50_ms": percentile_ms(latencies[name], 50), "auc": auc,
                         "auc_change": auc - binary_metrics(labels, reference)["roc_auc"]}
        same = np.mean((probabilities[name] >= threshold) == (reference >= threshold))
        rows.append([name, f"{figures[name]['p50_ms']:.1f}", f"{percentile_ms(latencies[name], 95):.1f}",
                     f"{statistics.mean(latencies['fp32']) / statistics.mean(latencies[name]):.2f}x",
                     f"{auc:.4f}", f"{figures[name]['auc_change']:+.4f}",
                     f"{np.max(np.abs(probabilities[name] - reference)):.4f}", f"{same:.2%}"])
    headers = ["precision", "p50 ms", "p95 ms", "speed vs fp32 (mean)", "test ROC-AUC", "vs fp32",
               "max |Δ probability|", "same label as fp32"]
    return markdown_table(headers, rows), figures


# --- the web app ------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def start_server(model: Path, port: int, precision: str, batching: bool) -> subprocess.Popen:
    command = [sys.executable, "-m", "webapp", "--server", "waitress", "--host", HOST, "--port", str(port),
               "--no-compare", "--model", str(model.resolve()), "--precision", precision]
    command += ["--batching", "on" if batching else "off"]
    return subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_until_healthy(server: subprocess.Popen, port: int, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server stopped before serving:\n{server.stderr.read()}")
        try:
            connection = http.client.HTTPConnection(HOST, port, timeout=5)
            connection.request("GET", "/health")
            connection.getresponse().read()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"the server did not answer /health within {timeout_s:.0f} s")


class Client:
    """One keep-alive connection posting comments and recording each request's latency and failure."""

    def __init__(self, port: int):
        self.connection = http.client.HTTPConnection(HOST, port, timeout=60)
        self.latencies_s: list[float] = []
        self.errors: list[str] = []

    def classify(self, text: str) -> None:
        body = json.dumps({"text": text}).encode("utf-8")
        start = time.perf_counter()
        try:
            self.connection.request("POST", "/api/predict", body, {"Content-Type": "application/json"})
            reply = self.connection.getresponse()
            payload = reply.read()
            if reply.status != 200 or "results" not in json.loads(payload):
                self.errors.append(f"HTTP {reply.status}: {payload[:200]!r}")
        except (OSError, http.client.HTTPException, ValueError) as error:
            self.errors.append(repr(error))
            self.connection.close()
        self.latencies_s.append(time.perf_counter() - start)


def run_clients(port: int, clients: int, comments: list[str], requests: int) -> tuple[list[float], list[str], float]:
    """``requests`` requests shared by ``clients`` threads; returns the latencies, the errors and the wall time."""
    pool = [Client(port) for _ in range(clients)]
    next_request = iter(range(requests))
    lock = threading.Lock()

    def work(client: Client) -> None:
        while True:
            with lock:
                index = next(next_request, None)
            if index is None:
                return
            client.classify(comments[index % len(comments)])

    threads = [threading.Thread(target=work, args=(client,)) for client in pool]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return ([s for client in pool for s in client.latencies_s], [e for client in pool for e in client.errors],
            time.perf_counter() - start)


def load_figures(model: Path, precision: str, batching: bool, comments: list[str], args) -> dict:
    """HTTP latency with one client, then requests/s with 8 and with 32 clients, on a fresh server."""
    port = free_port()
    print(f"web app: {precision}, batching {'on' if batching else 'off'}", file=sys.stderr, flush=True)
    server = start_server(model, port, precision, batching)
    try:
        wait_until_healthy(server, port)
        run_clients(port, 1, comments, 20)  # warm-up
        single, errors, _ = run_clients(port, 1, comments, args.single_requests)
        figures = {"p50_ms": percentile_ms(single, 50), "p95_ms": percentile_ms(single, 95), "errors": len(errors)}
        for clients in (8, 32):
            latencies, errors, wall_s = run_clients(port, clients, comments, args.requests * clients // 8)
            figures[clients] = {"per_s": len(latencies) / wall_s, "p95_ms": percentile_ms(latencies, 95),
                                "errors": len(errors)}
            figures["errors"] += len(errors)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return figures


def met(condition: bool) -> str:
    return "met" if condition else "**not met**"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=Path("runs/odd"), help="run folder (default: runs/odd)")
    parser.add_argument("--latency-comments", type=int, default=300, help="test comments timed at batch 1")
    parser.add_argument("--auc-limit", type=int, help="score only the first N test comments (default: all)")
    parser.add_argument("--single-requests", type=int, default=200, help="requests from one client")
    parser.add_argument("--requests", type=int, default=800, help="requests with 8 clients (32 clients: 4x)")
    parser.add_argument("--threads", type=int, help="torch threads for the model measurements (default: all cores)")
    args = parser.parse_args(argv)
    threads = set_threads(args.threads)

    history = json.loads((args.model / "history.json").read_text())
    test = load_splits(**dataset_args(history)).test
    texts, labels = test.texts[:args.auc_limit], test.labels[:args.auc_limit]
    order = np.random.default_rng(0).permutation(len(test.texts))
    comments = [test.texts[i] for i in order if len(test.texts[i]) <= MAX_TEXT_CHARS][:args.latency_comments]

    exported = export_for_serving(args.model)  # without onnx or onnxruntime the onnx and int8 rows are left out
    precisions = [precision for precision in PRECISIONS if precision not in EXPORTED or exported]
    predictors = {precision: load_predictor(args.model, precision=precision) for precision in precisions}
    if predictors["bf16"].precision != "bf16":
        print("this machine has no native bf16: the bf16 rows run in fp32", file=sys.stderr)
    scorers = {precision: predictor.probabilities for precision, predictor in predictors.items()}
    table, model = model_table(scorers, comments, texts, labels, predictors["fp32"].threshold)
    default = load_predictor(args.model, precision="auto").precision
    default_batching = on_by_default()

    serving = {(precision, batching): load_figures(args.model, precision, batching, comments, args)
               for precision in precisions for batching in (False, True)}

    within = [name for name in precisions if abs(model[name]["auc_change"]) <= AUC_TOLERANCE]
    fastest = min(within, key=lambda name: model[name]["p50_ms"])
    http_rows = [[precision, "on" if batching else "off", f"{f['p50_ms']:.1f}", f"{f['p95_ms']:.1f}",
                  f"{f[8]['per_s']:.0f}", f"{f[8]['p95_ms']:.0f}", f[8]["errors"],
                  f"{f[32]['per_s']:.0f}", f"{f[32]['p95_ms']:.0f}", f[32]["errors"]]
                 for (precision, batching), f in serving.items()]
    served = serving[(default, default_batching)]
    targets = [
        ["model p50 at batch 1", f"<= {TARGET_MODEL_P50_MS:.0f} ms", f"{model[default]['p50_ms']:.1f} ms",
         met(model[default]["p50_ms"] <= TARGET_MODEL_P50_MS)],
        ["HTTP p50, 1 client", f"<= {TARGET_HTTP_P50_MS:.0f} ms", f"{served['p50_ms']:.1f} ms",
         met(served["p50_ms"] <= TARGET_HTTP_P50_MS)],
        ["8 clients", f">= {TARGET_REQUESTS_PER_S_8:.0f} requests/s, 0 errors",
         f"{served[8]['per_s']:.0f} requests/s, {served[8]['errors']} errors",
         met(served[8]["per_s"] >= TARGET_REQUESTS_PER_S_8 and served[8]["errors"] == 0)],
        ["test ROC-AUC vs fp32", f"within {AUC_TOLERANCE}", f"{model[default]['auc_change']:+.4f}",
         met(abs(model[default]["auc_change"]) <= AUC_TOLERANCE)],
    ]

    print(f"Run {args.model} ({history['method']}, max length {predictors['fp32'].max_length}); "
          f"{len(texts):,} test comments for ROC-AUC, {len(comments)} for latency; torch threads for the model "
          f"rows, and ONNX Runtime's intra-op threads: {threads}. Web app: waitress, 32 threads; batching on: one "
          f"worker with {threads} threads, up to 32 texts within 2 ms; off: one pass per request with 1 thread.")
    print("\nThe model at batch 1 (tokenisation included) and its test quality; onnx and int8 are ONNX Runtime on "
          "the run's exports (python -m serving.export_onnx), in fp32 and with dynamic int8 quantization:\n")
    print(table)
    if "onnx" in model:
        faster = model["onnx"]["p50_ms"] < model["bf16"]["p50_ms"]
        print(f"\nONNX Runtime (onnx) vs bf16 at batch 1: p50 {model['onnx']['p50_ms']:.1f} vs "
              f"{model['bf16']['p50_ms']:.1f} ms: ONNX Runtime {'beats' if faster else 'does not beat'} bf16.")
    print("\nThe web app over HTTP (latencies in ms):\n")
    print(markdown_table(["precision", "batching", "1 client p50", "p95", "8 clients req/s", "p95", "errors",
                          "32 clients req/s", "p95", "errors"], http_rows))
    on_off = "on" if default_batching else "off"
    print(f"\nDefault on this machine: --precision auto serves {default}, batching {on_off}. The rule (the fastest at batch 1 "
          f"among those with a test ROC-AUC within {AUC_TOLERANCE} of fp32: {', '.join(within)}) picks {fastest}"
          + (": auto agrees.\n" if fastest == default else ": auto does not follow this measurement.\n"))
    print(markdown_table([f"target (default: {default}, batching {on_off})", "goal", "measured", "status"], targets))
    errors = sum(f["errors"] for f in serving.values())
    if errors:
        print(f"\n{errors} requests failed")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
