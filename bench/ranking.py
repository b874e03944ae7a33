"""Ranking claim -> submit throughput at K=9 through HTTP, and the ranking page's first-load weight.

Starts gunicorn (labelapp.settings.test on PostgreSQL, its own bench database, static files
collected into a temporary folder and served by WhiteNoise) on 127.0.0.1. Runs 1 labeler
(baseline), then 32 concurrent labelers, each a thread with its own HTTP session and API token
doing POST .../rankings/next/ -> POST .../submit/ with a complete K=9 answer (ratings on every
field, ties) for a bounded time. Prints rankings/s, p50/p99 per request, duplicates (a
comparison ranked by more labelers than it needs) and lost submissions (a 200 with no stored
ranking), with ratios against the baseline. Then logs in like a browser, opens a K=9 ranking
page and sums HTML + the CSS and JS it references, uncompressed.
Targets: >= 80 rankings/s at 32 labelers, p99 < 300 ms, zero duplicates and lost; < 200 KB.

    .venv/bin/python bench/ranking.py [--seconds 20] [--workers 5] [--threads 1] [--items 4000]
"""

import argparse
import logging
import os
import re
import statistics
import tempfile
import threading
import time
from collections import defaultdict

os.environ.setdefault(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/labelapp_bench_ranking"
)
from _setup import (
    BENCH_DB,
    CpuMeter,
    JsonClient,
    Variant,
    ab,
    django_setup,
    free_port,
    percentile_ms,
    start_gunicorn,
    variants,
)

SLUG = "bench-ranking"
K = 9
PASSWORD = "bench-password-not-secret"


def seed(items: int, labelers: int) -> list[str]:
    """A fresh project with `items` K=9 comparisons queued; API tokens of `labelers` labelers."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from annotations.intake.pipeline import PromptIntake
    from annotations.intake.rows import PromptRow
    from annotations.models import ComparisonTask, Completion, Project
    from annotations.roles import Role, user_set_roles
    from annotations.services.projects import project_create
    from annotations.services.queue import work_items_create

    Project.objects.filter(slug=SLUG).delete()
    project = project_create(
        user=None, data={"name": SLUG, "slug": SLUG, "remove_pii_from_train": False}
    )
    rows = [
        PromptRow(line=i, text=f"Bench prompt {i}: write a short poem", customer_id=f"c{i // 100}")
        for i in range(items)
    ]
    prompts = PromptIntake(project=project).add(rows)
    # Bulk inserts for speed; comparison_create does the same per task (and is what tests use).
    tasks = ComparisonTask.objects.bulk_create(
        [ComparisonTask(project=project, prompt=prompt) for prompt in prompts], batch_size=1000
    )
    text = "A line of a plausible model output about the sea and its tides. " * 12
    Completion.objects.bulk_create(
        [
            Completion(
                comparison=task, prompt_id=task.prompt_id, position=k, model_name="m", text=text
            )
            for task in tasks
            for k in range(K)
        ],
        batch_size=2000,
    )
    work_items_create(project=project, kind="ranking", comparisons=tasks)
    tokens = []
    User = get_user_model()
    for n in range(labelers):
        user, _ = User.objects.get_or_create(username=f"bench-ranker-{n}")
        user.set_password(PASSWORD)
        user.save()
        user_set_roles(user=user, roles=[Role.LABELER])
        tokens.append(Token.objects.get_or_create(user=user)[0].key)
    return tokens


def answer(task: dict, index: int) -> dict:
    ids = [output["id"] for output in task["outputs"]]
    keys = [spec["key"] for spec in task["schema"]["output_fields"]]
    rotated = ids[index % K :] + ids[: index % K]
    return {
        "groups": [rotated[:2], rotated[2:4], *([pk] for pk in rotated[4:])],
        "ratings": {
            str(pk): {"likert": 1 + (i + index) % 7, "fields": dict.fromkeys(keys, "no")}
            for i, pk in enumerate(ids)
        },
        "none_acceptable": False,
        "notes": "",
        "time_spent_ms": 30_000,
    }


def run_phase(base: str, tokens: list[str], seconds: float, meter: CpuMeter) -> dict:
    latencies: dict[str, list[float]] = defaultdict(list)
    accepted: list[tuple[int, str]] = []  # (ranking id, token) of every 200 to a submit
    errors: list[str] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def labeler(index: int, token: str) -> None:
        local: dict[str, list[float]] = defaultdict(list)
        mine: list[tuple[int, str]] = []
        http = JsonClient(base, token)
        while time.monotonic() < stop:
            started = time.perf_counter()
            status, task = http.post(f"/api/v1/projects/{SLUG}/rankings/next/")
            local["next"].append(time.perf_counter() - started)
            if status != 200:
                if status != 204:
                    errors.append(f"next {status}: {str(task)[:200]}")
                break
            started = time.perf_counter()
            status, done = http.post(
                f"/api/v1/rankings/assignments/{task['token']}/submit/", answer(task, index)
            )
            local["submit"].append(time.perf_counter() - started)
            if status != 200:
                errors.append(f"submit {status}: {str(done)[:200]}")
                break
            mine.append((done["id"], task["token"]))
        http.close()
        with lock:
            for name, values in local.items():
                latencies[name].extend(values)
            accepted.extend(mine)

    threads = [threading.Thread(target=labeler, args=(i, t)) for i, t in enumerate(tokens)]
    meter.start()
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    cpu = meter.stop()
    return {
        "latencies": latencies,
        "accepted": accepted,
        "errors": errors,
        "elapsed": elapsed,
        "cpu": cpu,
    }


def integrity(accepted: list[tuple[int, str]]) -> tuple[int, int]:
    """(duplicates, lost): comparisons with more submitted rankings than required labelers or
    whose queue count disagrees; 200 responses without their stored, submitted ranking."""
    from django.db.models import Count, F

    from annotations.models import Ranking, WorkItem

    stored = set(
        Ranking.objects.filter(pk__in=[pk for pk, _ in accepted], state="submitted").values_list(
            "pk", flat=True
        )
    )
    lost = len({pk for pk, _ in accepted} - stored) + (len(accepted) - len(set(accepted)))
    items = WorkItem.objects.filter(project__slug=SLUG, kind="ranking").annotate(
        rankings=Count("comparison__rankings", distinct=True)
    )
    duplicates = items.filter(rankings__gt=F("required_labels")).count()
    duplicates += items.exclude(done_count=F("rankings")).count()
    return duplicates, lost


def report(name: str, phase: dict) -> float:
    rate = len(phase["accepted"]) / phase["elapsed"]
    parts = [
        f"{name}: {len(phase['accepted'])} rankings in {phase['elapsed']:.1f} s = {rate:.1f}/s"
    ]
    for kind in ("next", "submit"):
        values = phase["latencies"][kind]
        if values:
            parts.append(
                f"{kind} p50 {statistics.median(values) * 1000:.0f} ms "
                f"p99 {percentile_ms(values, 0.99):.0f} ms"
            )
    print("; ".join(parts))
    count = max(len(phase["accepted"]), 1)
    print(
        "  CPU per ranking (next + submit): "
        + ", ".join(f"{k} {v * 1000 / count:.1f} ms" for k, v in phase["cpu"].items())
        + f" (machine: {os.cpu_count()} cores)"
    )
    for error in phase["errors"][:5]:
        print("  error:", error)
    return rate


def page_weight(base: str) -> None:
    """Log in, take a K=9 comparison and fetch its page and assets as a browser would."""
    import httpx

    sizes: dict[str, int] = {}
    with httpx.Client(base_url=base, headers={"Accept-Encoding": "identity"}) as http:
        http.get("/login/")
        http.post(
            "/login/",
            data={
                "username": "bench-ranker-0",
                "password": PASSWORD,
                "csrfmiddlewaretoken": http.cookies["csrftoken"],
            },
            headers={"Referer": f"{base}/login/"},
        )
        start = http.post(
            f"/projects/{SLUG}/rank/",
            data={"csrfmiddlewaretoken": http.cookies["csrftoken"]},
            headers={"Referer": f"{base}/projects/{SLUG}/rank/"},
        )
        page = http.get(start.headers["location"])
        assert page.status_code == 200 and page.text.count('class="rk-output"') == K, (
            page.status_code
        )
        sizes["HTML"] = len(page.content)
        assets = re.findall(r'<(?:script[^>]*src|link[^>]*href)="([^"]+\.(?:js|css))"', page.text)
        for url in assets:
            response = http.get(url)
            assert response.status_code == 200, url
            sizes[url] = len(response.content)
    total = sum(sizes.values())
    print(f"ranking page first load (K={K}, uncompressed): {total / 1024:.1f} KB (target < 200 KB)")
    for name, size in sizes.items():
        print(f"  {size / 1024:7.1f} KB  {name}")


def compare(args: argparse.Namespace) -> None:
    """`--labelers` against each side of the A/B (fresh comparisons each phase), alternately."""
    from django.db import connection

    def phase(side: Variant) -> tuple[float, float]:
        tokens = seed(args.items, args.labelers)
        connection.close()
        port = free_port()
        server = start_gunicorn(
            port=port, workers=args.workers, threads=args.threads, code=side.code, env=side.env
        )
        try:
            result = run_phase(
                f"http://127.0.0.1:{port}", tokens, args.seconds, CpuMeter(server.pid)
            )
        finally:
            server.terminate()
            server.wait(timeout=30)
        rate = report(f"{args.labelers} labelers", result)
        duplicates, lost = integrity(result["accepted"])
        print(f"  duplicates {duplicates}, lost {lost}")
        return rate, max(percentile_ms(result["latencies"][k], 0.99) for k in ("next", "submit"))

    ab(variants(compare=args.compare, paths=args.paths), args.runs, phase)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--baseline-seconds", type=float, default=8)
    parser.add_argument("--workers", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help=">1 uses gthread workers")
    parser.add_argument("--items", type=int, default=4000)
    parser.add_argument("--labelers", type=int, default=32)
    parser.add_argument("--compare", metavar="REF", help="A/B against a git revision")
    parser.add_argument("--paths", action="store_true", help="A/B of the sql and orm hot paths")
    parser.add_argument("--runs", type=int, default=3, help="phases per side of an A/B")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    django_setup()
    if args.compare or args.paths:
        compare(args)
        return
    tokens = seed(args.items, args.labelers + 1)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as static_root:
        server = start_gunicorn(
            port=port, workers=args.workers, threads=args.threads, static_root=static_root
        )
        try:
            print(
                f"gunicorn {args.workers} "
                + (
                    f"gthread workers x {args.threads} threads, "
                    if args.threads > 1
                    else "sync workers, "
                )
                + f"{args.items} comparisons of K={K}, database {BENCH_DB}"
            )
            meter = CpuMeter(server.pid)
            baseline = run_phase(base, tokens[-1:], args.baseline_seconds, meter)
            base_rate = report("1 labeler (baseline)", baseline)
            loaded = run_phase(base, tokens[: args.labelers], args.seconds, meter)
            rate = report(f"{args.labelers} labelers", loaded)
            duplicates, lost = integrity(baseline["accepted"] + loaded["accepted"])
            p99 = max(percentile_ms(loaded["latencies"][k], 0.99) for k in ("next", "submit"))
            print(
                f"ratio {args.labelers} labelers / baseline: {rate / base_rate:.2f}x; "
                f"duplicates {duplicates}, lost {lost}; "
                f"targets: >= 80/s {'met' if rate >= 80 else 'MISSED'}, "
                f"p99 < 300 ms {'met' if p99 < 300 else 'MISSED'} ({p99:.0f} ms)"
            )
            page_weight(base)
        finally:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    main()
