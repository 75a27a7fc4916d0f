#!/usr/bin/env python3
"""Benchmark of ``streamkit collect`` into a file; prints a markdown table.

Load from ``wrk`` (Debian: ``apt-get install wrk``) on loopback with keep-alive: single-message
POSTs (a 24-byte JSON body) and NDJSON batches of 1,000 lines. Targets from issue 13: >= 15,000
req/s single, >= 300,000 msgs/s batched, p99 reported. The collector runs as the real CLI process
writing a ``.ss`` file in a temporary directory; the messages it stored are counted afterwards
with ``streamkit stat`` so the table shows accepted = stored.

Usage: python scripts/benches/collect.py [--seconds N] [--connections N]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
SINGLE_TARGET = 15_000
BATCH_TARGET = 300_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wrk(url: str, script: Path, seconds: int, connections: int) -> tuple[float, str, int]:
    done = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(script), "--latency", url],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    out = done.stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"^\s*99%\s+(\S+)", out, re.MULTILINE).group(1)  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return rate, p99, int(bad.group(1)) if bad else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("(wrk is not installed: apt-get install wrk)")
        return
    work = Path(tempfile.mkdtemp(prefix="collect-bench-"))
    (work / "single.lua").write_text(
        'wrk.method = "POST"\nwrk.body = \'{"id":12345,"name":"x"}\'\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    batch = "".join(json.dumps({"payload": {"id": i, "name": "x"}}, separators=(",", ":")) + "\n"
                    for i in range(1000))  # fmt: skip
    (work / "batch.ndjson").write_text(batch)
    (work / "batch.lua").write_text(
        'wrk.method = "POST"\nlocal f = io.open("batch.ndjson")\nwrk.body = f:read("*a")\n'
        'f:close()\nwrk.headers["Content-Type"] = "application/x-ndjson"\n'
    )
    port = free_port()
    out = work / "collected.ss"
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamkit.cli.main", "collect", "--listen", f"127.0.0.1:{port}",
         "--output", f"file://{out}/"],
        stderr=subprocess.PIPE, env=ENV, cwd=work,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        proc.stderr.readline()
        base = f"http://127.0.0.1:{port}"
        s_rate, s_p99, s_bad = wrk(
            f"{base}/streams/single", work / "single.lua", args.seconds, args.connections
        )
        os.chdir(work)
        b_rate, b_p99, b_bad = wrk(
            f"{base}/streams/batch", work / "batch.lua", args.seconds, min(8, args.connections)
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    report = subprocess.run(
        [sys.executable, "-m", "streamkit.cli.main", "stat", str(out), "--format", "json"],
        capture_output=True, env=ENV, check=True,
    )  # fmt: skip
    stored = {s["key"]: s["messages"] for s in json.loads(report.stdout)["streams"]}
    shutil.rmtree(work, ignore_errors=True)
    print(f"wrk, keep-alive, {args.connections} connections, {args.seconds} s per row; "
          f"{os.cpu_count()} cores shared with the load generator.\n")  # fmt: skip
    print("| load | rate | target | p99 | non-2xx | stored |")
    print("|---|---|---|---|---|---|")
    print(f"| single POSTs | {s_rate:,.0f} req/s | {SINGLE_TARGET:,} | {s_p99} | {s_bad} | "
          f"{stored.get('single', 0):,} |")  # fmt: skip
    print(f"| NDJSON x1000 | {b_rate * 1000:,.0f} msgs/s | {BATCH_TARGET:,} | {b_p99} | {b_bad} | "
          f"{stored.get('batch', 0):,} |")  # fmt: skip


if __name__ == "__main__":
    main()
