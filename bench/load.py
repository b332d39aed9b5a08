"""Load generators: wrk (Debian's package) when installed, else a bounded asyncio httpx loop.

Both run for a fixed time against loopback only, and report requests/s and the p50/p95/p99
latency in milliseconds plus how many responses were errors (non-2xx/3xx or failures).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.scenarios import Request


@dataclass
class Result:
    requests: int
    rps: float
    p50: float
    p95: float
    p99: float
    errors: int


def wrk_path() -> str | None:
    return shutil.which("wrk")


def _lua_string(value: str) -> str:
    return "[==[" + value + "]==]"


def wrk_script(requests: list[Request], token: str) -> str:
    """A Lua script cycling through the requests, with the auth header, printing a summary."""
    entries = []
    for r in requests:
        headers = dict(r.headers)
        if r.auth:
            headers["authorization"] = f"Bearer {token}"
        header_lua = ", ".join(f"[ {_lua_string(k)} ] = {_lua_string(v)}" for k, v in headers.items())
        body = _lua_string(r.body) if r.body is not None else "nil"
        entries.append(f"{{ method = {_lua_string(r.method)}, path = {_lua_string(r.path)}, "
                       f"headers = {{ {header_lua} }}, body = {body} }}")
    return (
        "local requests = {\n  " + ",\n  ".join(entries) + "\n}\n"
        "local i = 0\n"
        "request = function()\n"
        "  i = i + 1\n"
        "  local r = requests[(i % #requests) + 1]\n"
        "  return wrk.format(r.method, r.path, r.headers, r.body)\n"
        "end\n"
        "done = function(summary, latency, requests)\n"
        "  local e = summary.errors\n"
        "  io.write(string.format('RESULT %d %d %d %d %d %d\\n', summary.requests,\n"
        "    summary.duration, e.connect + e.read + e.write + e.status + e.timeout,\n"
        "    latency:percentile(50), latency:percentile(95), latency:percentile(99)))\n"
        "end\n"
    )


def run_wrk(base_url: str, requests: list[Request], token: str, *, seconds: float,
            connections: int, threads: int = 1) -> Result:
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "scenario.lua"
        script.write_text(wrk_script(requests, token))
        done = subprocess.run(
            [wrk_path(), f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
             "--timeout", "10s", "-s", str(script), base_url],
            capture_output=True, text=True, timeout=seconds + 60, check=False,
        )
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {done.stdout}\n{done.stderr}")
    count, duration_us, errors, p50, p95, p99 = (int(x) for x in line.split()[1:])
    return Result(requests=count, rps=count / (duration_us / 1e6), p50=p50 / 1000,
                  p95=p95 / 1000, p99=p99 / 1000, errors=errors)


async def _run_httpx(base_url: str, requests: list[Request], token: str, seconds: float,
                     connections: int) -> Result:
    import httpx

    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)

    async def worker(client: httpx.AsyncClient, offset: int) -> None:
        nonlocal errors
        i = offset
        while time.monotonic() < deadline:  # bounded by time
            r = requests[i % len(requests)]
            i += 1
            headers = dict(r.headers)
            if r.auth:
                headers["authorization"] = f"Bearer {token}"
            began = time.perf_counter()
            try:
                response = await client.request(r.method, r.path, headers=headers,
                                                content=r.body)
                if response.status_code >= 400:
                    errors += 1
            except httpx.HTTPError:
                errors += 1
            latencies.append(time.perf_counter() - began)

    began = time.monotonic()
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=10) as client:
        await asyncio.gather(*(worker(client, n) for n in range(connections)))
    elapsed = time.monotonic() - began
    latencies.sort()

    def percentile(p: float) -> float:
        if not latencies:
            return 0.0
        return latencies[min(len(latencies) - 1, int(len(latencies) * p / 100))] * 1000

    return Result(requests=len(latencies), rps=len(latencies) / elapsed, p50=percentile(50),
                  p95=percentile(95), p99=percentile(99), errors=errors)


def run_httpx(base_url: str, requests: list[Request], token: str, *, seconds: float,
              connections: int) -> Result:
    return asyncio.run(_run_httpx(base_url, requests, token, seconds, connections))


def drive(loader: str, base_url: str, requests: list[Request], token: str, *, seconds: float,
          connections: int) -> Result:
    if loader == "wrk":
        return run_wrk(base_url, requests, token, seconds=seconds, connections=connections)
    return run_httpx(base_url, requests, token, seconds=seconds, connections=connections)
