"""``make bench``: seed a database at scale, start the real server, load it over HTTP, and print
requests/s and p50/p95/p99 per scenario next to a bare JSON endpoint (the ceiling) served by
the same server in the same run. SQLite always; PostgreSQL in a scratch database created and
dropped by the run. The contacts list also runs on Piccolo's stock SQLite engine, to show the
per-query connection overhead Rapport's engine removes.

    .venv/bin/python bench/run.py                      # 100,000 customers, 1,000,000 interactions
    .venv/bin/python bench/run.py --customers 1000000 --workers 2
    .venv/bin/python bench/run.py --customers 300 --seconds 1 --backends sqlite   # smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import plugins as bench_plugins  # noqa: E402
from bench.load import Result, drive, wrk_path  # noqa: E402
from bench.scenarios import SCENARIOS, Request  # noqa: E402
from bench.seed import Seeded, seed  # noqa: E402

RAPPORT = Path(sys.executable).parent / "rapport"
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
ENGINE_LABELS = {
    "kept": "Rapport's SQLite engine (one kept connection per worker)",
    "stock": "Piccolo's stock SQLiteEngine (a new connection per query)",
    "pool": "PostgreSQL (asyncpg pool)",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--interactions", type=int, default=None,
                        help="default: 10 per customer (1,000,000 for 100,000 customers)")
    parser.add_argument("--seconds", type=float, default=10.0, help="load time per scenario")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1, help="rapport serve --workers")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--postgres-url", default=os.environ.get(
        "RAPPORT_BENCH_POSTGRES_URL", os.environ.get("RAPPORT_TEST_POSTGRES_URL", DEFAULT_POSTGRES)))
    parser.add_argument("--loader", choices=["auto", "wrk", "httpx"], default="auto")
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    parser.add_argument("--plugins", default=None,
                        help="plugin ids to enable, seed and drive (bench/plugins/); "
                        "default: every one that is installed; 'none' for core only")
    args = parser.parse_args(argv)
    if args.interactions is None:
        args.interactions = args.customers * 10
    return args


# --- environment --------------------------------------------------------------------------


def pick_loader(choice: str) -> str:
    if choice == "httpx":
        return "httpx"
    if wrk_path() is None and shutil.which("apt-get") and os.geteuid() == 0:
        print("wrk is not installed: installing Debian's package", flush=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], capture_output=True,
                       timeout=300, check=False)
    if wrk_path() is not None:
        return "wrk"
    if choice == "wrk":
        sys.exit("wrk is not installed (apt-get install wrk), use --loader httpx")
    return "httpx"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_env(workdir: Path, database_url: str, enabled: list[str] = ()) -> dict[str, str]:
    plugins_toml = workdir / "plugins.toml"
    plugins_toml.write_text(f"enabled = {json.dumps(list(enabled))}\n")
    env = dict(os.environ)
    env.update(RAPPORT_DATA_DIR=str(workdir / "data"), RAPPORT_DATABASE_URL=database_url,
               RAPPORT_PLUGINS_TOML=str(plugins_toml), RAPPORT_BENCH="1",
               RAPPORT_INSECURE_COOKIES="1")
    env.pop("RAPPORT_SQLITE_STOCK_ENGINE", None)
    return env


@contextlib.contextmanager
def scratch_postgres(admin_url: str):
    """A database of its own for this run, dropped afterwards."""
    import asyncpg

    name = f"rapport_bench_{uuid.uuid4().hex[:8]}"

    async def admin(sql: str) -> None:
        connection = await asyncpg.connect(admin_url)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def migrate(env: dict[str, str]) -> None:
    done = subprocess.run([str(RAPPORT), "migrate"], env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    if done.returncode != 0:
        sys.exit(f"rapport migrate failed:\n{done.stdout}\n{done.stderr}")


def seed_database(env: dict[str, str], customers: int, interactions: int,
                  plugins: list[bench_plugins.BenchPlugin]) -> tuple[Seeded, dict[str, dict]]:
    """Core seeding, then each bench plugin's ``seed`` (in dependency order); returns the
    seeded facts and each plugin's facts by plugin id."""
    from core import db
    from core.app import Rapport
    from core.settings import Settings

    async def run() -> tuple[Seeded, dict[str, dict]]:
        rapport = Rapport(Settings.from_env(env))
        rapport.activate()
        await db.connect(rapport.engine, pool_size=2)
        try:
            seeded = await seed(rapport, customers, interactions)
            facts: dict[str, dict] = {}
            for plugin in plugins:
                if plugin.seed is None:
                    facts[plugin.plugin] = {}
                    continue
                began = time.monotonic()
                print(f"  {plugin.plugin}: seeding", flush=True)
                facts[plugin.plugin] = dict(await plugin.seed(rapport.settings.database_url,
                                                              seeded) or {})
                print(f"  {plugin.plugin}: seeded in {time.monotonic() - began:.0f} s", flush=True)
            return seeded, facts
        finally:
            await db.disconnect(rapport.engine)

    return asyncio.run(run())


@contextlib.contextmanager
def server(env: dict[str, str], workers: int, log_path: Path):
    """The real server (`rapport serve`) on a free loopback port; stopped afterwards."""
    port = free_port()
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [str(RAPPORT), "serve", "--host", "127.0.0.1", "--port", str(port),
             "--workers", str(workers)],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            base_url = f"http://127.0.0.1:{port}"
            wait_until_up(base_url, process, log_path)
            yield base_url
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def wait_until_up(base_url: str, process: subprocess.Popen, log_path: Path) -> None:
    import httpx

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"rapport serve exited:\n{log_path.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    sys.exit(f"rapport serve did not answer within 90 s:\n{log_path.read_text()[-3000:]}")


# --- scenarios -----------------------------------------------------------------------------


def probe(base_url: str, request: Request, token: str) -> str | None:
    """Send the request once; return why the scenario cannot run, or None."""
    import httpx

    headers = dict(request.headers)
    if request.auth:
        headers["authorization"] = f"Bearer {token}"
    try:
        response = httpx.request(request.method, base_url + request.path, headers=headers,
                                 content=request.body, timeout=30)
    except httpx.HTTPError as exc:
        return f"{exc.__class__.__name__}"
    if response.status_code in (404, 405):
        return "not available"
    if response.status_code >= 300:
        return f"not available (answered {response.status_code})"
    return None


def scenario_list(engine: str, plugins: list[bench_plugins.BenchPlugin],
                  facts: dict[str, dict]):
    """(name, zero-argument request builder) for this engine: core's, then each plugin's
    (plugin scenarios run with Rapport's SQLite engine and on PostgreSQL)."""
    for name, scenario, engines in SCENARIOS:
        if engine in engines or (engine == "pool" and "kept" in engines):
            yield name, scenario
    if engine == "stock":
        return
    for plugin in plugins:
        for name, scenario in plugin.scenarios:
            yield (f"{plugin.plugin}: {name}",
                   lambda seeded, f=scenario, p=plugin.plugin: f(seeded, facts.get(p, {})))


def run_block(label: str, engine: str, env: dict[str, str], seeded: Seeded,
              args: argparse.Namespace, loader: str, workdir: Path,
              plugins: list[bench_plugins.BenchPlugin] = (),
              facts: dict[str, dict] | None = None) -> list[dict]:
    rows: list[dict] = []
    with server(env, args.workers, workdir / f"server-{label}-{engine}.log") as base_url:
        for name, scenario in scenario_list(engine, list(plugins), facts or {}):
            requests = scenario(seeded)
            requests = [requests] if isinstance(requests, Request) else list(requests or [])
            why = probe(base_url, requests[0], seeded.token) if requests else "not available"
            row = {"backend": label, "engine": engine, "scenario": name}
            if why is not None:
                rows.append(row | {"skipped": why})
                print(f"  {name}: skipped: {why}", flush=True)
                continue
            result: Result = drive(loader, base_url, requests, seeded.token,
                                   seconds=args.seconds, connections=args.connections)
            rows.append(row | vars(result))
            print(f"  {name}: {result.rps:,.0f} req/s", flush=True)
    return rows


def csv_import(env: dict[str, str], rows: int, workdir: Path) -> dict:
    """Time ``rapport import contacts`` of ``rows`` realistic rows (accounts, phones, tags),
    the dry run and the commit, through the CLI like a self-hoster."""
    from bench.seed import write_import_csv

    name = f"CSV import ({rows:,} rows)"
    path = workdir / "import.csv"
    write_import_csv(path, rows)
    timings = {}
    for phase, extra in (("dry_run_seconds", ["--dry-run"]), ("seconds", [])):
        began = time.monotonic()
        done = subprocess.run([str(RAPPORT), "import", "contacts", str(path), *extra], env=env,
                              capture_output=True, text=True, timeout=3600, check=False)
        timings[phase] = time.monotonic() - began
        if done.returncode != 0:
            if "No such command" in done.stderr:
                return {"scenario": name, "skipped": "not available"}
            return {"scenario": name, "skipped": "failed: "
                    + (done.stderr.strip().splitlines() or ["?"])[-1]}
    return {"scenario": name, **timings, "rows_per_second": rows / timings["seconds"]}


# --- report --------------------------------------------------------------------------------


def print_report(rows: list[dict], args: argparse.Namespace, loader: str,
                 seeded_by_backend: dict[str, Seeded]) -> None:
    print()
    print(f"Rapport benchmark: {args.workers} worker(s), {loader} with {args.connections} "
          f"connections for {args.seconds:g} s per scenario, loopback.")
    print("Compare figures as ratios within this run (the load generator shares the CPUs).")
    for (backend, engine) in dict.fromkeys((r["backend"], r["engine"]) for r in rows
                                           if "engine" in r):
        seeded = seeded_by_backend[backend]
        block = [r for r in rows if r.get("backend") == backend and r.get("engine") == engine]
        ceiling = next((r["rps"] for r in block if r["scenario"].startswith("bare JSON")
                        and "rps" in r), None)
        print()
        print(f"{backend}: {ENGINE_LABELS[engine]}; {seeded.customers:,} customers, "
              f"{seeded.interactions:,} interactions")
        print(f"  {'scenario':40} {'req/s':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
              f"{'errors':>7} {'of ceiling':>10}")
        for r in block:
            if "skipped" in r:
                print(f"  {r['scenario']:40} skipped: {r['skipped']}")
                continue
            share = f"{r['rps'] / ceiling:.0%}" if ceiling else "-"
            print(f"  {r['scenario']:40} {r['rps']:>9,.0f} {r['p50']:>8.1f} {r['p95']:>8.1f} "
                  f"{r['p99']:>8.1f} {r['errors']:>7} {share:>10}")
    for scenario in ("50-row indexed select", "contacts list"):
        kept = next((r for r in rows if r.get("engine") == "kept"
                     and r["scenario"] == scenario and "rps" in r), None)
        stock = next((r for r in rows if r.get("engine") == "stock"
                      and r["scenario"] == scenario and "rps" in r), None)
        if kept and stock:
            print(f"\nSQLite {scenario}: {kept['rps']:,.0f} req/s with Rapport's engine against "
                  f"{stock['rps']:,.0f} with Piccolo's stock engine "
                  f"({kept['rps'] / stock['rps']:.1f}x).")
    for r in rows:
        if "engine" not in r:
            print()
            if "skipped" in r:
                print(f"{r['backend']}: {r['scenario']}: skipped: {r['skipped']}")
            else:
                print(f"{r['backend']}: {r['scenario']}: {r['seconds']:.1f} s "
                      f"({r['rows_per_second']:,.0f} rows/s; dry run alone "
                      f"{r['dry_run_seconds']:.1f} s)")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    loader = pick_loader(args.loader)
    plugins, enabled = bench_plugins.select(args.plugins)
    if enabled:
        print(f"plugins: {', '.join(enabled)} enabled; seeding and scenarios from "
              f"{', '.join(p.plugin for p in plugins) or 'none'}", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="rapport-bench-"))
    rows: list[dict] = []
    seeded_by_backend: dict[str, Seeded] = {}
    try:
        for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
            label = {"sqlite": "SQLite", "postgres": "PostgreSQL"}[backend]
            print(f"{label}: migrating and seeding {args.customers:,} customers, "
                  f"{args.interactions:,} interactions", flush=True)
            home = workdir / backend
            home.mkdir()
            if backend == "sqlite":
                database = contextlib.nullcontext(f"sqlite:///{home / 'data' / 'rapport.sqlite3'}")
            else:
                database = scratch_postgres(args.postgres_url)
            with database as url:
                env = base_env(home, url, enabled)
                migrate(env)
                seeded, facts = seed_database(env, args.customers, args.interactions, plugins)
                seeded_by_backend[label] = seeded
                print(f"  seeded in {seeded.seconds:.0f} s", flush=True)
                engines = ["kept", "stock"] if backend == "sqlite" else ["pool"]
                for engine in engines:
                    server_env = dict(env)
                    if engine == "stock":
                        server_env["RAPPORT_SQLITE_STOCK_ENGINE"] = "1"
                    print(f"  serving with {ENGINE_LABELS[engine]}", flush=True)
                    rows += run_block(label, engine, server_env, seeded, args, loader, home,
                                      plugins, facts)
                rows.append({"backend": label} | csv_import(env, min(100_000, max(
                    1000, args.customers)), home))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print_report(rows, args, loader, seeded_by_backend)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
