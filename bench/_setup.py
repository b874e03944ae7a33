"""Shared bench setup: a PostgreSQL database of its own, migrated, with Django configured."""

import os
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/labelapp_bench")


def django_setup() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["DATABASE_URL"] = BENCH_DB
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "labelapp.settings.test")
    import dj_database_url
    import psycopg

    config = dj_database_url.parse(BENCH_DB)
    admin = psycopg.connect(
        dbname="postgres",
        user=config["USER"],
        host=config["HOST"],
        port=config["PORT"] or 5432,
        password=config["PASSWORD"] or None,
        autocommit=True,
    )
    with admin.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [config["NAME"]])
        if cursor.fetchone() is None:
            cursor.execute(f'CREATE DATABASE "{config["NAME"]}"')
    admin.close()

    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Code:
    """The code a bench server runs: this working tree, or a git revision unpacked into a folder
    of its own with its own virtualenv (its web requirements only), for an A/B in one run."""

    label: str
    root: Path
    python: Path


def code_at(ref: str | None) -> Code:
    """This tree (ref None) or the revision `ref`, unpacked and installed once under /tmp."""
    import subprocess
    import tempfile

    if ref is None:
        return Code("this tree", ROOT, Path(sys.executable))
    sha = subprocess.run(
        ["git", "rev-parse", "--verify", f"{ref}^{{commit}}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    folder = Path(tempfile.gettempdir()) / f"labelapp-bench-{sha[:12]}"
    python = folder / ".venv" / "bin" / "python"
    if not python.exists():
        folder.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", sha], cwd=ROOT, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
        (folder / "node_modules").symlink_to(ROOT / "node_modules")
        subprocess.run([sys.executable, "-m", "venv", str(folder / ".venv")], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "-r", "requirements/base.txt"],
            cwd=folder,
            check=True,
        )
    return Code(f"{ref} ({sha[:8]})", folder, python)


@dataclass(frozen=True)
class Variant:
    """One side of an A/B: the code a server runs and its extra environment."""

    label: str
    code: Code
    env: dict[str, str]


def variants(*, compare: str | None, paths: bool) -> list[Variant]:
    """The sides of an A/B in one run: `compare` (a git revision) against this tree, and/or this
    tree's two hot-path implementations (LABELAPP_HOT_PATH=sql and orm)."""
    sides = []
    if compare:
        sides.append(Variant(code_at(compare).label, code_at(compare), {}))
    here = code_at(None)
    if paths:
        sides += [
            Variant("this tree, hot path sql", here, {"LABELAPP_HOT_PATH": "sql"}),
            Variant("this tree, hot path orm", here, {"LABELAPP_HOT_PATH": "orm"}),
        ]
    else:
        sides.append(Variant("this tree", here, {}))
    return sides


def ab(sides: list[Variant], runs: int, phase) -> None:
    """Run `phase(side) -> (rate, p99 ms)` for every side, `runs` times, alternating (so that
    load from elsewhere on the machine falls on every side alike); print each side's mean rate,
    its worst p99 and its ratio to the first side."""
    import statistics

    results: dict[str, list[tuple[float, float]]] = {side.label: [] for side in sides}
    for run in range(1, runs + 1):
        for side in sides:
            print(f"run {run}, {side.label}:")
            results[side.label].append(phase(side))
    first = statistics.mean(rate for rate, _ in results[sides[0].label])
    for label, values in results.items():
        rates = [rate for rate, _ in values]
        print(
            f"{label}: mean {statistics.mean(rates):.1f}/s over {runs} runs "
            f"({', '.join(f'{r:.1f}' for r in rates)}), worst p99 "
            f"{max(p99 for _, p99 in values):.0f} ms, ratio to {sides[0].label}: "
            f"{statistics.mean(rates) / first:.2f}"
        )


def start_gunicorn(
    *,
    port: int,
    workers: int,
    threads: int,
    static_root: str | None = None,
    code: Code | None = None,
    env: dict[str, str] | None = None,
):
    """gunicorn on 127.0.0.1:port with the test settings on the bench database (sync workers for
    threads == 1, else gthread), running `code` (default: this tree). With static_root, static
    files are collected there first so the server serves them as in production. Returns the
    process once it answers."""
    import subprocess
    import time

    import httpx

    code = code or code_at(None)
    env = dict(
        os.environ,
        DATABASE_URL=BENCH_DB,
        DJANGO_SETTINGS_MODULE="labelapp.settings.test",
        **(env or {}),
    )
    if static_root:
        env["DJANGO_STATIC_ROOT"] = static_root
        subprocess.run(
            [str(code.python), "manage.py", "collectstatic", "--noinput", "-v", "0"],
            cwd=code.root,
            env=env,
            check=True,
        )
    gunicorn = code.python.parent / "gunicorn"
    args = [str(gunicorn), "labelapp.wsgi", "-b", f"127.0.0.1:{port}", "-w", str(workers)]
    if threads > 1:
        args += ["-k", "gthread", "--threads", str(threads)]
    server = subprocess.Popen(
        [*args, "--log-level", "warning"], cwd=code.root, env=env, stdout=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/login/", timeout=1)
            return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("gunicorn did not start within 30 s")


def percentile_ms(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of latencies in seconds, in milliseconds."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


class JsonClient:
    """A small JSON-over-HTTP client on http.client. The load generator shares the machine's cores
    with the server and PostgreSQL, so it should cost as little CPU per request as it can."""

    def __init__(self, base: str, token: str) -> None:
        import http.client
        from urllib.parse import urlsplit

        parts = urlsplit(base)
        self._connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        self._headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}

    def post(self, path: str, body: object = None) -> tuple[int, object]:
        """(status, decoded JSON body or None). Reconnects when the server closed the socket."""
        import json

        payload = json.dumps(body if body is not None else {})
        self._connection.request("POST", path, body=payload, headers=self._headers)
        response = self._connection.getresponse()
        raw = response.read()
        if response.will_close:
            self._connection.close()
        return response.status, (json.loads(raw) if raw else None)

    def close(self) -> None:
        self._connection.close()


def process_cpu_seconds(match) -> float:
    """User + system CPU so far of every process for which match(pid, ppid, name) holds."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        fields = text.rsplit(")", 1)[1].split()
        if match(int(stat.parent.name), int(fields[1]), name):
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


class CpuMeter:
    """CPU seconds spent by the server (a process and its children), PostgreSQL and this process
    between start() and stop(): where the machine's time goes per request."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid

    def _sample(self) -> tuple[float, float, float]:
        import time

        server = process_cpu_seconds(lambda pid, ppid, _: self.server_pid in (pid, ppid))
        postgres = process_cpu_seconds(lambda _pid, _ppid, name: name.startswith("postgres"))
        return server, postgres, time.process_time()

    def start(self) -> None:
        self._before = self._sample()

    def stop(self) -> dict[str, float]:
        after = self._sample()
        return {
            name: after[i] - self._before[i]
            for i, name in enumerate(("server", "postgres", "client"))
        }
