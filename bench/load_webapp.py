"""Latency and throughput of the web app's JSON API on loopback, against a server this script starts.

    python bench/load_webapp.py [--model runs/even] [--clients 8] [--requests 400]

It starts ``python -m webapp --server waitress`` on a free loopback port (the model defaults to
the best run in results/results.json, as for the app itself), waits for /health, then measures:

1. one client sending one comment at a time: the latency a single person sees (p50, p95);
2. ``--clients`` clients at once, ``--requests`` requests in all: latency under load and
   requests per second.

Every client keeps one HTTP/1.1 connection open, as a browser or an API client would. The run
is bounded by the request counts and by --time-limit; it exits non-zero if any request failed.
Targets for a 6-layer student on 2 CPU cores: single-client p50 <= 30 ms, >= 40 requests/s
with 8 clients.
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

REPO_ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
# Comments of the lengths a forum sees, from a few words to about the 128-token limit.
COMMENTS = (
    "Thank you for the thoughtful reply.",
    "You are an idiot.",
    "I don't agree with you, but I respect the way you argued it. The numbers in the second "
    "paragraph look off to me though; where do they come from?",
    "Shut up, nobody asked for your pathetic opinion, loser.",
    "This is the third time this week that the same people post the same complaint about the "
    "referee, and every time someone explains the offside rule again. Could the moderators pin "
    "an explanation at the top of the forum so we can talk about the actual game? The match "
    "itself was great: both keepers made saves I did not think were possible, and the second "
    "half was as open as anything I have seen this season.",
    "lol what a clown",
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def start_server(args: argparse.Namespace, port: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "webapp", "--server", "waitress", "--host", HOST,
               "--port", str(port), "--threads", str(args.threads),
               "--torch-threads", str(args.torch_threads), "--no-compare"]
    if args.model:
        command += ["--model", str(Path(args.model).resolve())]
    return subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)


def wait_until_healthy(server: subprocess.Popen, port: int, timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server stopped before serving:\n{server.stderr.read()}")
        try:
            connection = http.client.HTTPConnection(HOST, port, timeout=5)
            connection.request("GET", "/health")
            return json.loads(connection.getresponse().read())
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"the server did not answer /health within {timeout_s:.0f} s")


class Client:
    """One keep-alive connection posting comments and recording each request's latency."""

    def __init__(self, port: int):
        self.connection = http.client.HTTPConnection(HOST, port, timeout=30)
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


def percentile_ms(latencies_s: list[float], percent: int) -> float:
    return 1000 * statistics.quantiles(latencies_s, n=100, method="inclusive")[percent - 1]


def run_single_client(port: int, requests: int) -> Client:
    client = Client(port)
    for _ in range(requests):
        client.classify(COMMENTS[0])
    return client


def run_concurrent_clients(port: int, clients: int, requests: int,
                           time_limit_s: float) -> tuple[list[Client], float]:
    """``requests`` requests shared by ``clients`` threads; returns the clients and the wall time."""
    pool = [Client(port) for _ in range(clients)]
    next_request = iter(range(requests))
    lock = threading.Lock()
    deadline = time.monotonic() + time_limit_s

    def work(client: Client) -> None:
        while time.monotonic() < deadline:
            with lock:
                index = next(next_request, None)
            if index is None:
                return
            client.classify(COMMENTS[index % len(COMMENTS)])

    threads = [threading.Thread(target=work, args=(client,)) for client in pool]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return pool, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="run folder (default: the best run in results/results.json)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=400, help="requests with concurrent clients")
    parser.add_argument("--single-requests", type=int, default=100, help="requests from one client")
    parser.add_argument("--threads", type=int, default=8, help="waitress worker threads")
    parser.add_argument("--torch-threads", type=int, default=1, help="intra-op threads per forward pass")
    parser.add_argument("--time-limit", type=float, default=300, help="seconds, per phase")
    args = parser.parse_args(argv)

    port = free_port()
    server = start_server(args, port)
    try:
        health = wait_until_healthy(server, port, timeout_s=300)
        run_single_client(port, 10)  # warm-up: first calls allocate buffers
        single = run_single_client(port, args.single_requests)
        pool, wall_s = run_concurrent_clients(port, args.clients, args.requests, args.time_limit)
    finally:
        server.terminate()
        server.wait(timeout=30)

    loaded = [latency for client in pool for latency in client.latencies_s]
    errors = single.errors + [error for client in pool for error in client.errors]
    print(f"model {health['model']}, waitress threads {args.threads}, torch threads {args.torch_threads}")
    print(f"1 client, {len(single.latencies_s)} requests: p50 {percentile_ms(single.latencies_s, 50):.1f} ms, "
          f"p95 {percentile_ms(single.latencies_s, 95):.1f} ms   (target p50 <= 30 ms)")
    print(f"{args.clients} clients, {len(loaded)} requests in {wall_s:.1f} s: "
          f"p50 {percentile_ms(loaded, 50):.1f} ms, p95 {percentile_ms(loaded, 95):.1f} ms, "
          f"{len(loaded) / wall_s:.1f} requests/s   (target >= 40 requests/s)")
    if len(loaded) < args.requests:
        print(f"stopped by --time-limit after {len(loaded)} of {args.requests} requests")
    print(f"errors: {len(errors)}")
    for error in errors[:5]:
        print(f"  {error}")
    return 1 if errors or len(loaded) < args.requests else 0


if __name__ == "__main__":
    sys.exit(main())
