"""`make bench-decoy`: does a decoy start answer as fast as a real one? (issue 14, item 8)

With PASSWORDLESS_SIGNUP=false a number without an account gets a stand-in
request (the decoy): the same answer as a registered number, and nothing sent.
If it answered measurably sooner or later than a real start, the login form
would tell who has an account. This measures POST /login/ end to end over
HTTP, for registered numbers (the real start, a call to Vonage Verify v2) and
unknown ones (the decoy), interleaved one for one in a random order, each for
a number never seen before, from a new cookie-less browser.

The server is gunicorn (gunicorn.conf.py, one worker so that one learned
provider time serves every request) with the production settings of `make
bench`, its limits lifted (bench/settings_project.py), on private Redis and
PostgreSQL (SQLite without it). Vonage is the tests' emulator
(tests/emulator) in its own process, answering every call after a fixed
BENCH_DECOY_LATENCY (30 ms): a near, steady provider, the case in which a
difference of a few milliseconds would show most.

Two servers run side by side, requests alternating between them: the site as
it is, and the decoy as it was before item 8 (bench/settings_decoy.py,
BENCH_DECOY_PAUSE=before: the learned pause, then the stand-in's work on top).
Prints a Markdown table; a measurement, not a test. Knobs: BENCH_DECOY_PAIRS
(300 measured pairs per server), BENCH_DECOY_WARMUP (40), BENCH_DECOY_LATENCY
(0.03 seconds), BENCH_DECOY_CACHE (redis; `database` for the embedded default's
database cache, with DEBUG on since production refuses it).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.client import Browser
from bench.run import app_env, base_env, client_address, machine, percentile
from bench.services import BASE_DIR, AppServer, Services, manage, start_app, stop

PAIRS = int(os.environ.get("BENCH_DECOY_PAIRS", "300"))
WARMUP = int(os.environ.get("BENCH_DECOY_WARMUP", "40"))
LATENCY = float(os.environ.get("BENCH_DECOY_LATENCY", "0.03"))
CACHE = os.environ.get("BENCH_DECOY_CACHE", "redis")
SEED = 14
SETTINGS = "bench.settings_decoy"
ONE_WORKER = ("--workers=1",)


@dataclass
class Variant:
    """One server: the decoy as it is, or as it was; its measurements."""

    name: str
    pause: str  # BENCH_DECOY_PAUSE
    server: AppServer | None = None
    registered: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    wall: dict = field(default_factory=lambda: {"real": [], "decoy": []})
    cpu: dict = field(default_factory=lambda: {"real": [], "decoy": []})


def numbers(first: int, count: int) -> list[str]:
    # +1 415 555 xxxx: valid, fictional; a new number for every start, so that
    # no start meets a live request (adoption) or a per-number counter.
    return [f"+1415555{index:04d}" for index in range(first, first + count)]


def start_upstream(services: Services, stack: contextlib.ExitStack) -> tuple[dict, Path]:
    """Start bench/upstream.py (the emulator, answering after LATENCY); return how to reach it."""
    ca = services.tmp / "vonage-ca-decoy.pem"
    info_file = services.tmp / "vonage-decoy.json"
    upstream = subprocess.Popen(  # noqa: S603 (our own commands, no shell)
        [
            sys.executable,
            "-m",
            "bench.upstream",
            f"--delay={LATENCY}",
            f"--ca={ca}",
            f"--info={info_file}",
        ],
        cwd=BASE_DIR,
        start_new_session=True,
    )
    stack.callback(stop, upstream)
    deadline = time.monotonic() + 30
    while not info_file.exists():
        if upstream.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the Vonage emulator did not start")
        time.sleep(0.1)
    return json.loads(info_file.read_text()), ca


def cache_env() -> dict:
    """Return the settings of BENCH_DECOY_CACHE: Redis (production) or the database cache."""
    if CACHE == "redis":
        return {}
    if CACHE == "database":
        # The embedded default's cache, where the stand-in's records are rows:
        # production refuses it, so DEBUG is on. Django culls a third of a
        # database cache past MAX_ENTRIES (300 unless set), counters included,
        # which a run of hundreds of starts reaches in seconds: this measures
        # timing, not culling, so the cache is made large enough.
        return {"DEBUG": "true", "CACHE_URL": "dbcache://django_cache?max_entries=1000000"}
    raise SystemExit("BENCH_DECOY_CACHE must be redis or database")


def start_variant(
    variant: Variant, services: Services, env: dict, upstream: dict, ca: Path, stack
) -> None:
    this_env = app_env(
        services,
        env,
        f"decoy_{variant.name}",
        PASSWORDLESS_SIGNUP="false",
        BENCH_MIDDLEWARE="1",
        BENCH_DECOY_PAUSE=variant.pause,
        VERIFY_BACKEND="vonage",
        VERIFY_ALLOW_DEVELOPMENT_BACKEND_IN_PRODUCTION="false",
        VONAGE_API_KEY=upstream["key"],
        VONAGE_API_SECRET=upstream["secret"],
        VONAGE_API_HOST=upstream["host"],
        VONAGE_TIMEOUT="5",
        REQUESTS_CA_BUNDLE=str(ca),
        NO_PROXY="127.0.0.1,localhost",
    )
    this_env.update(cache_env())
    manage(SETTINGS, this_env, "migrate", "--noinput", "-v0")
    manage(
        SETTINGS,
        this_env,
        "shell",
        "-c",
        "from accounts.models import User\n"
        "User.objects.bulk_create([User(username=f'bench-{n}', phone_number_for_2fa=n) "
        f"for n in {variant.registered!r}])",
    )
    variant.server = start_app(
        stack,
        name=f"decoy-{variant.name}",
        settings_module=SETTINGS,
        env=this_env,
        log_dir=services.tmp,
        gunicorn_args=ONE_WORKER,
    )


def post_number(server: AppServer, number: str, address: str):
    """Ask for a code for `number` from a new browser; return the timed POST's response."""
    browser = Browser(port=server.port, address=address)
    try:
        form = browser.get("/login/")
        response = browser.post("/login/", form, {"number": number})
    finally:
        browser.close()
    if response.status != 302 or response.location != "/verify/":
        log = server.log.read_text(errors="replace")[-4000:]
        raise RuntimeError(
            f"POST /login/ gave {response.status} {response.location}; the server's log ends:\n"
            + log
        )
    return response


def check_pause(variant: Variant, response) -> None:
    """Make sure the server runs the decoy the variant names."""
    if response.headers.get("X-Bench-Decoy-Pause", "") != variant.pause:
        raise RuntimeError(f"the server for {variant.name!r} does not run that decoy")


def measure(variants: list[Variant]) -> None:
    chooser = random.Random(SEED)  # noqa: S311 (a seeded order, no secret)
    for index in range(WARMUP + PAIRS):
        for variant in variants:
            kinds = ["real", "decoy"]
            chooser.shuffle(kinds)
            for kind in kinds:
                number = (variant.registered if kind == "real" else variant.unknown)[index]
                response = post_number(variant.server, number, client_address(index))
                check_pause(variant, response)
                if index >= WARMUP:
                    variant.wall[kind].append(response.seconds * 1000)
                    variant.cpu[kind].append(response.cpu_us / 1000)


def bootstrap_interval(statistic, samples: list, rounds: int = 2000) -> tuple[float, float]:
    """Return a 95% bootstrap interval of `statistic` over `samples` (seeded)."""
    resample = random.Random(SEED)  # noqa: S311 (as above)
    values = sorted(statistic(resample.choices(samples, k=len(samples))) for _ in range(rounds))
    return values[int(rounds * 0.025)], values[int(rounds * 0.975) - 1]


def report(variants: list[Variant], services: Services) -> str:
    database = "PostgreSQL" if services.postgres_port else "SQLite"
    lines = [
        "### Decoy timing",
        "",
        f"Machine: {machine()}. Services: {services.versions()}; database {database}, "
        + (
            "cache Redis, DEBUG off."
            if CACHE == "redis"
            else "the database cache (the embedded default's), DEBUG on."
        ),
        "",
        f"POST /login/ over HTTP, wall time at the client, {PAIRS} registered and {PAIRS} "
        f"unknown numbers per server after {WARMUP} warm-up pairs, interleaved in a random "
        f"order (seed {SEED}), a new number and a new browser each time. "
        f"PASSWORDLESS_SIGNUP=false, Verify v2 against the emulator answering after "
        f"{LATENCY * 1000:.0f} ms, gunicorn with one worker.",
        "",
        "| decoy | real p50 | decoy p50 | difference | real p90 | decoy p90 | difference "
        "| paired difference p50 (95% interval) | CPU in Django p50, real / decoy |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for variant in variants:
        real, decoy = variant.wall["real"], variant.wall["decoy"]
        # Each decoy against the real start measured next to it: the machine's
        # drift falls on both.
        paired = [d - r for r, d in zip(real, decoy, strict=True)]
        low, high = bootstrap_interval(statistics.median, paired)
        p50 = statistics.median(decoy) - statistics.median(real)
        p90 = percentile(decoy, 90) - percentile(real, 90)
        lines.append(
            f"| {variant.name} | {statistics.median(real):.1f} ms "
            f"| {statistics.median(decoy):.1f} ms | {p50:+.1f} ms "
            f"| {percentile(real, 90):.1f} ms | {percentile(decoy, 90):.1f} ms | {p90:+.1f} ms "
            f"| {statistics.median(paired):+.1f} ms ({low:+.1f} to {high:+.1f}) "
            f"| {statistics.median(variant.cpu['real']):.1f} / "
            f"{statistics.median(variant.cpu['decoy']):.1f} ms |"
        )
    lines += [
        "",
        "Differences: decoy minus real (positive: the decoy is slower); the paired one is the "
        "median of each decoy minus the real start measured next to it. *as it is*: the "
        "stand-in's own work padded up to the provider's learned time; *before item 8*: the "
        "learned time slept, then the stand-in's work on top (bench/settings_decoy.py). "
        "CPU in Django excludes the wait on Vonage and the decoy's pause.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    started = time.monotonic()
    variants = [Variant("as it is", ""), Variant("before item 8", "before")]
    count = WARMUP + PAIRS
    for offset, variant in enumerate(variants):
        base = 2 * offset * count
        variant.registered = numbers(base, count)
        variant.unknown = numbers(base + count, count)
    with Services() as services:
        if not services.start_redis():
            sys.exit("make bench-decoy needs redis-server (apt-get install redis-server)")
        services.start_postgres()
        env = base_env(services)
        upstream, ca = start_upstream(services, services)
        for variant in variants:
            start_variant(variant, services, env, upstream, ca, services)
        print(f"bench-decoy: {count} pairs per server…", file=sys.stderr)
        measure(variants)
        text = report(variants, services)
    print(text)
    print(f"bench-decoy: done in {time.monotonic() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
