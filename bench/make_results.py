"""Run every benchmark and write bench/RESULTS.md from their output: `make bench` calls this.

    python -m bench.make_results                      # everything, real sizes (about 30-40 min on 2 cores)
    python -m bench.make_results --only serving          # rerun one benchmark; the other sections stay
    python -m bench.make_results --quick              # tiny sizes, to check that every script runs;
                                                      # prints the Markdown instead of writing RESULTS.md
    python -m bench.make_results --script-args speed_levers "--shape teacher"

Each script prints its figures to stdout; they go into RESULTS.md verbatim, one section per
script, after a description of the machine they were measured on. Progress (stderr) streams to
the terminal. Timing is only meaningful on a machine doing nothing else, so the load average
before and after each script, the date and the git revision are recorded next to its figures.
With ``--only``, the sections of the other benchmarks are kept from the existing RESULTS.md as
they are. The file is written to a temporary name and renamed into place, so it is never
half-written; a failed script is marked FAILED in its section, with the end of its error
output, and makes this command exit 1.

Some scripts need the trained runs of ``make all``: teacher_cache (runs/teacher), speed_levers'
quantisation lever (runs/even), serving and explain_latency (runs/odd, a 6-layer student).
"""
import argparse
import datetime
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import torch

from training.files import write_text_atomically

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "bench" / "RESULTS.md"
ERROR_TAIL_LINES = 25


@dataclass(frozen=True)
class Benchmark:
    name: str
    title: str
    command: tuple[str, ...]  # after the Python interpreter
    quick_args: tuple[str, ...]  # tiny sizes for --quick
    takes_threads: bool = True  # accepts --threads (torch intra-op threads)


BENCHMARKS = (
    Benchmark("trainer_vs_ours", "Our training loop vs transformers.Trainer and Trainer + peft",
              ("-m", "bench.trainer_vs_ours"),
              ("--limit", "32", "--validation-limit", "64", "--epochs", "1", "--batch-size", "8")),
    Benchmark("speed_levers", "Speed levers, each against its default",
              ("-m", "bench.speed_levers"),
              ("--limit", "32", "--batch-size", "8", "--inference-limit", "64", "--no-compile")),
    Benchmark("teacher_cache", "Cached teacher logits vs the teacher at every step",
              ("-m", "bench.teacher_cache"), ("--limit", "32", "--epochs", "1", "--batch-size", "8")),
    Benchmark("hardware_limit", "Achieved FLOP/s vs the matmul peak",
              ("-m", "bench.hardware_limit"),
              ("--limit", "32", "--batch-size", "8", "--matrix-size", "512", "--repeats", "3")),
    Benchmark("serving", "Serving the odd-layer student: precisions, request batching, the web app under load",
              ("-m", "bench.serving", "--model", "runs/odd"),
              ("--latency-comments", "20", "--auc-limit", "200", "--single-requests", "20", "--requests", "40")),
    Benchmark("explain_latency", "What a word-by-word explanation adds to a request, odd-layer student",
              ("-m", "bench.explain_latency", "--model", "runs/odd"),
              ("--comments", "6", "--rounds", "1"), takes_threads=False),
    Benchmark("teacher_cost", "The stronger teacher's training step against the e5 teacher's",
              ("-m", "bench.teacher_cost"), ("--limit", "16", "--rounds", "1", "--batch-size", "8")),
    Benchmark("parallel_runs", "Two training runs at once (make study JOBS=2) against one after the other",
              ("-m", "bench.parallel_runs"), ("--limit", "32"), takes_threads=False),
)


@dataclass
class Outcome:
    benchmark: Benchmark
    command: list[str]
    returncode: int
    stdout: str
    error_tail: str
    seconds: float
    load_before: float
    load_after: float
    finished: str  # date and time, UTC


def package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def cpu_info() -> tuple[str, set[str]]:
    """The CPU's model name and its feature flags, from /proc/cpuinfo where there is one."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or "unknown", set()
    fields = dict(line.split(":", 1) for line in lines if ":" in line)
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    return fields.get("model name", "unknown"), set(fields.get("flags", "").split())


def memory_gib() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 2 ** 20:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def git_revision() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True).stdout.strip()
    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + (" (with uncommitted changes)" if git("status", "--porcelain") else "")


def machine_section(threads: int | None) -> str:
    model, flags = cpu_info()
    matmul_flags = [flag for flag in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if flag in flags]
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    rows = [
        ("CPU", model),
        ("cores", f"{os.cpu_count()} logical, {usable} usable by this process"),
        ("matrix-relevant CPU flags", ", ".join(matmul_flags) or "none of avx2/avx512/amx"),
        ("memory", memory_gib()),
        ("torch", f"{torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}"),
        ("torch threads", f"{threads} (--threads)" if threads else f"{torch.get_num_threads()} (torch's default)"),
        ("libraries", ", ".join(f"{name} {package_version(name)}"
                                for name in ("transformers", "peft", "accelerate", "tokenizers"))),
        ("Python, OS", f"{platform.python_version()}, {platform.platform()}"),
    ]
    return "\n".join(["| | |", "|---|---|"] + [f"| {key} | {value} |" for key, value in rows])


def last_lines(text: str, count: int) -> str:
    """The last ``count`` lines, each cut to what a terminal shows after its carriage returns (progress bars)."""
    return "\n".join(line.rsplit("\r", 1)[-1] for line in text.splitlines()[-count:])


def run(benchmark: Benchmark, args: argparse.Namespace) -> Outcome:
    command = [sys.executable, *benchmark.command]
    if args.quick:
        command += benchmark.quick_args
    if args.threads and benchmark.takes_threads:
        command += ["--threads", str(args.threads)]
    command += shlex.split(args.script_args.get(benchmark.name, ""))
    print(f"\n### {benchmark.name}: {shlex.join(command[1:])}", file=sys.stderr, flush=True)
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    # stdout (the figures) goes to a file; stderr (progress) streams through and its end is kept for errors.
    with tempfile.TemporaryFile("w+") as stdout:
        process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=stdout, stderr=subprocess.PIPE)
        tail = b""
        for chunk in iter(lambda: os.read(process.stderr.fileno(), 4096), b""):
            sys.stderr.buffer.write(chunk)
            sys.stderr.flush()
            tail = (tail + chunk)[-20_000:]
        process.wait()
        stdout.seek(0)
        figures = stdout.read()
    return Outcome(benchmark, command, process.returncode, figures,
                   last_lines(tail.decode(errors="replace"), ERROR_TAIL_LINES),
                   time.perf_counter() - started, load_before, os.getloadavg()[0], utc_now())


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def section_body(outcome: Outcome) -> str:
    """A benchmark's section below its heading: the command, when and how it ran, its figures."""
    shown = shlex.join(["python", *outcome.command[1:]])
    status = "" if outcome.returncode == 0 else f" **FAILED (exit {outcome.returncode})**"
    parts = [f"`{shown}`: {outcome.seconds / 60:.1f} min, finished {outcome.finished} at git {git_revision()}, "
             f"load average {outcome.load_before:.2f} before, {outcome.load_after:.2f} after.{status}",
             "```text\n" + (outcome.stdout.rstrip() or "(no output)") + "\n```"]
    if outcome.returncode != 0:
        parts.append("End of its error output:\n\n```text\n" + outcome.error_tail + "\n```")
    return "\n\n".join(parts)


def existing_sections(path: Path) -> dict[str, str]:
    """The benchmark sections of an existing RESULTS.md, by title, without their numbered headings."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return {}
    sections = {}
    for block in re.split(r"(?m)^## ", text)[1:]:
        heading, _, body = block.partition("\n")
        numbered = re.fullmatch(r"\d+\. (.+)", heading.strip())
        if numbered:
            sections[numbered.group(1)] = body.strip()
    return sections


def document(bodies: dict[str, str], args: argparse.Namespace) -> str:
    """RESULTS.md: the introduction, the machine, then one section per benchmark in BENCHMARKS order."""
    quick = ("\n\n**Quick mode: tiny sizes to check that the scripts run. These figures mean nothing.**"
             if args.quick else "")
    intro = (f"# Benchmark results\n\nWritten {utc_now()} by `make bench` (`python -m bench.make_results`): every "
             f"figure below is the output of the command named in its section, copied verbatim; each section "
             f"says when and at which git revision it was measured (`--only` reruns some and keeps the others). "
             f"Each script's docstring (`python -m bench.<name> --help`) says what it measures and why. Timings "
             f"depend on the machine and on what else runs on it: compare figures within one section, measured "
             f"side by side, rather than across machines.{quick}")
    titles = [benchmark.title for benchmark in BENCHMARKS if benchmark.title in bodies]
    return "\n\n".join([intro, "## Machine", machine_section(args.threads)]
                       + [f"## {number}. {title}\n\n{bodies[title]}"
                          for number, title in enumerate(titles, start=1)]) + "\n"


def main(argv: list[str] | None = None) -> int:
    names = [b.name for b in BENCHMARKS]
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help=f"comma-separated subset of: {', '.join(names)}")
    parser.add_argument("--quick", action="store_true", help="tiny sizes; print instead of writing (unless --out)")
    parser.add_argument("--out", type=Path, help=f"where to write (default: {DEFAULT_OUT.relative_to(REPO_ROOT)})")
    parser.add_argument("--threads", type=int, help="torch threads for the training/inference scripts")
    parser.add_argument("--script-args", nargs=2, action="append", default=[], metavar=("NAME", "ARGS"),
                        help="extra arguments for one script, e.g. speed_levers '--shape teacher'")
    args = parser.parse_args(argv)
    chosen = args.only.split(",") if args.only else names
    unknown = sorted(set(chosen) - set(names) | {name for name, _ in args.script_args} - set(names))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(names)}")
    args.script_args = dict(args.script_args)

    outcomes = [run(benchmark, args) for benchmark in BENCHMARKS if benchmark.name in chosen]
    out = args.out or (None if args.quick else DEFAULT_OUT)
    kept = existing_sections(out) if out is not None and args.only else {}
    text = document({**kept, **{outcome.benchmark.title: section_body(outcome) for outcome in outcomes}}, args)
    if out is None:
        print(text)
    else:
        write_text_atomically(out, text)
        print(f"wrote {out}", file=sys.stderr)
    failed = [outcome.benchmark.name for outcome in outcomes if outcome.returncode != 0]
    if failed:
        print(f"FAILED: {', '.join(failed)} (see their sections)", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
