"""Where a node's CPU time goes under load: py-spy samples, summed by function.

Starts one Olivia node, drives it with ``olivia-bench`` (one test at a time),
and samples the node with ``py-spy record`` (``pip install -e .[bench]``
brings py-spy) while the load runs.  Prints, per test, the share of samples
whose innermost Python frame is each function ("self" time), and the share
per module.  Frames of the event loop itself (``Runner.run``: uvloop's C
code, the socket system calls and the callback machinery) appear as
``event loop``.  py-spy may need root or ``ptrace`` permission.

    python -m bench.profile                      # SET and GET at -P 1 and -P 16, 5 s each
    python -m bench.profile --tests get --pipeline 16 --seconds 10 --top 25
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.servers import olivia_server

EVENT_LOOP = "event loop (uvloop C code, syscalls)"


def summarize(raw: str) -> tuple[int, collections.Counter[str], collections.Counter[str]]:
    """Samples, self time by function and by module, from py-spy's raw output.

    Each raw line is ``frame;frame;...;frame COUNT`` with the innermost frame
    last; a frame reads ``function (path/to/file.py:LINE)``.
    """
    by_function: collections.Counter[str] = collections.Counter()
    by_module: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        innermost = stack.split(";")[-1]
        function, _, where = innermost.partition(" (")
        path = where.split(":")[0]
        if function == "Runner.run" or "asyncio/runners.py" in path:
            function, module = EVENT_LOOP, EVENT_LOOP
        else:
            module = Path(path).stem if path else "?"
            function = f"{module}.{function}"
        by_function[function] += count
        by_module[module] += count
    return total, by_function, by_module


def profile_one(port: int, pid: int, test: str, pipeline: int, seconds: float,
                connections: int, py_spy: str, workdir: Path) -> str:
    out = workdir / f"{test}-P{pipeline}.txt"
    bench = subprocess.Popen(
        [sys.executable, "-m", "olivia.tools.bench", "-p", str(port), "-t", test,
         "-P", str(pipeline), "-c", str(connections), "--duration", str(seconds + 2), "-q"],
        stdout=subprocess.DEVNULL)
    try:
        # Start sampling a moment in, once the load (and any populate) runs.
        subprocess.run([py_spy, "record", "--pid", str(pid), "--rate", "250", "--format", "raw",
                        "--duration", str(int(seconds)), "--output", str(out), "--nonblocking"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=seconds + 60)
    finally:
        bench.wait(timeout=seconds + 120)
    return out.read_text()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tests", default="set,get")
    parser.add_argument("--pipeline", default="1,16", help="comma list of depths")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--top", type=int, default=12, help="functions listed per test")
    args = parser.parse_args()
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        print("bench.profile: py-spy not found; pip install py-spy (or -e .[bench])",
              file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="olivia-profile-") as tmp, olivia_server() as node:
        for test in args.tests.split(","):
            for depth in (int(p) for p in args.pipeline.split(",")):
                raw = profile_one(node.port, node.pid, test, depth, args.seconds,
                                  args.connections, py_spy, Path(tmp))
                total, by_function, by_module = summarize(raw)
                print(f"\n### {test.upper()} -P {depth} ({total} samples of the node)\n")
                print("| module | self |\n|---|--:|")
                for module, count in by_module.most_common():
                    print(f"| {module} | {100 * count / max(total, 1):.1f} % |")
                print("\n| function | self |\n|---|--:|")
                for function, count in by_function.most_common(args.top):
                    print(f"| `{function}` | {100 * count / max(total, 1):.1f} % |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
