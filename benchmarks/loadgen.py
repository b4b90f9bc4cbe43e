"""A bounded HTTP/1.1 keep-alive load generator: N connections, each sending requests back to back.

    python benchmarks/loadgen.py --url http://127.0.0.1:8000/predict --body body.json \
        --connections 32 --seconds 10 [--max-requests 100000]

Prints one JSON object: requests, errors (non-2xx or broken connections), requests/s, raw
per-request latency percentiles in ms, and the longest gap between two completed responses.
Raw means measured from sending a request to reading its whole response, with no correction for
coordinated omission (wrk applies one, which inflates p99).
Bounded in time and count; only for servers on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np


def build_request(url: str, body: bytes | None) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"refusing to load {host}: this generator only targets servers on this machine")
    path = parts.path or "/"
    if body is None:
        head = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n"
        return host, port, head.encode()
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return host, port, head.encode() + body


async def connection(host, port, request, deadline, budget, latencies, counters, stop):
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        counters["errors"] += 1
        return
    try:
        while time.perf_counter() < deadline and budget[0] > 0 and not (stop and stop.is_set()):
            budget[0] -= 1
            start = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            body = await reader.readexactly(length) if length else b""
            done = time.perf_counter()
            latencies.append(done - start)
            counters["completions"].append(done)
            if not 200 <= status < 300:
                counters["errors"] += 1
                if counters["first_error"] is None:
                    counters["first_error"] = f"{status}: {body[:200]!r}"
    except (OSError, asyncio.IncompleteReadError, ValueError) as error:
        counters["errors"] += 1
        counters["first_error"] = counters["first_error"] or repr(error)
    finally:
        writer.close()


async def run(url: str, body: bytes | None, connections: int, seconds: float, max_requests: int,
              stop: threading.Event | None = None, completions: list[float] | None = None) -> dict:
    """Load `url` until `seconds` pass, `max_requests` are sent or `stop` is set (from another thread);
    `completions`, when given, receives every response's completion time (seconds since the epoch)."""
    host, port, request = build_request(url, body)
    latencies: list[float] = []
    counters = {"errors": 0, "first_error": None, "completions": []}
    budget = [max_requests]
    started, started_wall = time.perf_counter(), time.time()
    deadline = started + seconds
    await asyncio.gather(*(connection(host, port, request, deadline, budget, latencies, counters, stop)
                           for _ in range(connections)))
    elapsed = time.perf_counter() - started
    done = np.sort(counters["completions"])
    gaps = np.diff(done)
    if completions is not None:
        completions.extend((started_wall + done - started).tolist())
    ms = np.array(latencies) * 1000 if latencies else np.array([np.nan])
    return {
        "requests": len(latencies),
        "errors": counters["errors"],
        "first_error": counters["first_error"],
        "seconds": round(elapsed, 3),
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "max_ms": round(float(ms.max()), 3),
        # the longest time no response completed on any connection (the pause clients saw), and when it began
        "max_gap_ms": round(float(gaps.max(initial=0) * 1000), 3),
        "max_gap_at": round(started_wall + float(done[gaps.argmax()] - started), 3) if len(gaps) else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--body", help="file with the JSON body to POST (GET when omitted)")
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--max-requests", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    body = Path(args.body).read_bytes() if args.body else None
    try:
        import uvloop  # noqa: F401 - faster client loop when available

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    result = asyncio.run(run(args.url, body, args.connections, args.seconds, args.max_requests))
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
