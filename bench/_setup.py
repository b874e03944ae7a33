"""Shared bench setup: a PostgreSQL database of its own, migrated, with Django configured."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/labelapp_bench")


def django_setup() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["DATABASE_URL"] = BENCH_DB
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "labelapp.settings.test")
    import dj_database_url
    import psycopg2

    config = dj_database_url.parse(BENCH_DB)
    admin = psycopg2.connect(
        dbname="postgres",
        user=config["USER"],
        host=config["HOST"],
        port=config["PORT"] or 5432,
        password=config["PASSWORD"] or None,
    )
    admin.autocommit = True
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


def start_gunicorn(*, port: int, workers: int, threads: int, static_root: str | None = None):
    """gunicorn on 127.0.0.1:port with the test settings on the bench database (sync workers for
    threads == 1, else gthread). With static_root, static files are collected there first so the
    server serves them as in production. Returns the process once it answers."""
    import subprocess
    import time

    import httpx

    env = dict(os.environ, DATABASE_URL=BENCH_DB, DJANGO_SETTINGS_MODULE="labelapp.settings.test")
    if static_root:
        env["DJANGO_STATIC_ROOT"] = static_root
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
            cwd=ROOT,
            env=env,
            check=True,
        )
    gunicorn = Path(sys.executable).parent / "gunicorn"
    args = [str(gunicorn), "labelapp.wsgi", "-b", f"127.0.0.1:{port}", "-w", str(workers)]
    if threads > 1:
        args += ["-k", "gthread", "--threads", str(threads)]
    server = subprocess.Popen(
        [*args, "--log-level", "warning"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL
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
