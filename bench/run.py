"""`make bench`: cost per login, throughput, and a slow upstream, as one Markdown report.

Every server runs on 127.0.0.1 (private PostgreSQL and Redis, gunicorn, the
Vonage emulator), every loop is bounded in count and in time, and everything
started is stopped at the end. See bench/README.md for what each part measures.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import platform
import secrets
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from bench.client import Browser, CodeReader
from bench.services import BASE_DIR, AppServer, Services, cpu_seconds, manage, start_app, stop

STEPS = ("GET /login/", "POST number", "GET /verify/", "POST code", "GET /")
FLOWS = int(os.environ.get("BENCH_FLOWS", "200"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "16"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "20"))
SLOW_CLIENTS = 20
SLOW_SECONDS = float(os.environ.get("BENCH_SLOW_SECONDS", "15"))
UPSTREAM_DELAY = 0.5
NUMBERS = 25  # the people of part (a), each logging in again and again


@dataclass(frozen=True)
class App:
    name: str
    settings: str
    login_path: str = "/login/"
    number_field: str = "number"
    verify_path: str = "/verify/"
    code_field: str = "code"
    logged_in: str = "Log out"


PROJECT = App("project", "bench.settings_project")
FLOOR = App("floor", "bench.settings_floor", logged_in="Hello +")
# The same views on `startproject`'s settings and middleware (bench/settings_bare.py).
BARE = App("bare-floor", "bench.settings_bare", logged_in="Hello +")
ALLAUTH = App(
    "django-allauth",
    "bench.settings_allauth",
    login_path="/accounts/login/",
    number_field="login",
    verify_path="/accounts/login/code/confirm/",
    logged_in="Hello +",
)


class FlowError(Exception):
    pass


def number(index: int) -> str:
    # +1 415 555 01xx-style numbers: valid, fictional, and told apart by their
    # last two digits, which is all a masked number in the output still shows.
    return f"+1415555{index:04d}"


def client_address(index: int) -> str:
    # TEST-NET-2 (RFC 5737): only ever a header value, never dialled.
    return f"198.51.100.{index % 250 + 1}"


def login_flow(app: App, port: int, reader: CodeReader, phone: str, address: str):
    """Log `phone` in from a new browser; return the five responses."""
    browser = Browser(port=port, address=address)
    try:
        form = browser.get(app.login_path)
        sent = reader.sent(phone)
        started = browser.post(app.login_path, form, {app.number_field: phone})
        if started.status != 302 or not (started.location or "").endswith(app.verify_path):
            raise FlowError(f"{app.name}: POST number gave {started.status} {started.location}")
        code = reader.code(phone, after=sent)
        verify = browser.get(app.verify_path)
        checked = browser.post(app.verify_path, verify, {app.code_field: code})
        if checked.status != 302 or checked.location != "/":
            raise FlowError(f"{app.name}: POST code gave {checked.status} {checked.location}")
        home = browser.get("/")
        if home.status != 200 or app.logged_in not in home.text:
            raise FlowError(f"{app.name}: GET / after the login is not logged in")
        return [form, started, verify, checked, home]
    finally:
        browser.close()


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def base_env(services: Services) -> dict:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DJANGO_SETTINGS_MODULE", "DATABASE_URL", "CACHE_URL", "WEB_CONCURRENCY"}
    }
    env.update(
        {
            # Production: DEBUG off behind an HTTPS proxy (the clients send the
            # X-Forwarded-* headers nginx would), one proxy in front.
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
            "TRUSTED_PROXY_COUNT": "1",
            "VERIFY_BACKEND": "console",
            # The console backend reads no SMS bill; production refuses it
            # unless told, and the benchmark reads its codes on purpose.
            "VERIFY_ALLOW_DEVELOPMENT_BACKEND_IN_PRODUCTION": "true",
            "VERIFY_TEST_NUMBERS": "",
            "PASSWORDLESS_SIGNUP": "true",
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "INFO",
            # A connection kept per worker thread, as Deploying recommends.
            "CONN_MAX_AGE": "60",
            "PYTHONIOENCODING": "utf-8",
        }
    )
    return env


@contextlib.contextmanager
def project_in_this_process(name: str):
    """Run the project in this process, as `make bench` configures it: yield the services.

    For the tools that look inside a login (bench.steps, bench.profile): a
    private PostgreSQL and Redis, the locmem backend, the database migrated
    and Django set up.
    """
    with Services() as services:
        if not services.start_redis():
            sys.exit(f"{name} needs redis-server")
        services.start_postgres()
        env = base_env(services)
        env.update(
            DATABASE_URL=services.database_url(name.replace(".", "_")),
            CACHE_URL=services.cache_url(),
            VERIFY_BACKEND="locmem",
            ALLOWED_HOSTS="testserver",
            LOG_LEVEL="WARNING",
            STATIC_MANIFEST="false",
            DJANGO_SETTINGS_MODULE="bench.settings_project",
        )
        manage("bench.settings_project", env, "migrate", "--noinput", "-v0")
        os.environ.update(env)
        import django

        django.setup()
        yield services


def app_env(services: Services, env: dict, name: str, **extra) -> dict:
    db_name = f"bench_{name.replace('-', '_')}_{secrets.token_hex(3)}"
    return {
        **env,
        "DATABASE_URL": services.database_url(db_name),
        "CACHE_URL": services.cache_url(),
        "STATIC_ROOT": str(services.tmp / f"static-{db_name}"),
        **extra,
    }


# (a) Cost per login ----------------------------------------------------------------


@dataclass
class Cost:
    app: App
    server: AppServer
    reader: CodeReader
    env: dict
    wall: dict = field(default_factory=lambda: defaultdict(list))
    cpu: dict = field(default_factory=lambda: defaultdict(list))
    queries: dict = field(default_factory=lambda: defaultdict(list))
    worker_cpu_per_flow: float = 0.0
    redis_per_flow: float = 0.0


def cost_per_login(services: Services, env: dict, stack: contextlib.ExitStack) -> list[Cost]:
    one_sync_worker = (
        "--workers=1",
        "--worker-class=sync",
        "--threads=1",
        "--max-requests=0",
    )
    costs = []
    for app in (PROJECT, FLOOR, BARE, ALLAUTH):
        this_env = app_env(services, env, app.name, BENCH_MIDDLEWARE="1")
        if app is ALLAUTH:
            # allauth logs in only numbers it knows; the others sign up on the
            # warm-up flows below.
            numbers = [number(100 + i) for i in range(NUMBERS)]
            manage(app.settings, this_env, "migrate", "--noinput", "-v0")
            manage(
                app.settings,
                this_env,
                "shell",
                "-c",
                "from django.contrib.auth.models import User\n"
                f"for n in {numbers!r}: User.objects.get_or_create(username=n)",
            )
        server = start_app(
            stack,
            name=app.name,
            settings_module=app.settings,
            env=this_env,
            log_dir=services.tmp,
            gunicorn_args=one_sync_worker,
        )
        reader = CodeReader(server.log)
        stack.callback(reader.close)
        costs.append(Cost(app, server, reader, this_env))

    # Warm-up: every person logs in once (sign-up, imports, caches).
    for index in range(NUMBERS):
        for cost in costs:
            login_flow(cost.app, cost.server.port, cost.reader, number(100 + index), "198.51.100.1")

    workers = {cost.app.name: cost.server.worker_pids() for cost in costs}
    before = {name: cpu_seconds(pids[0]) for name, pids in workers.items()}
    # Interleaved, so that whatever else the machine does falls on all four alike.
    for index in range(FLOWS):
        for cost in costs:
            responses = login_flow(
                cost.app,
                cost.server.port,
                cost.reader,
                number(100 + index % NUMBERS),
                client_address(index),
            )
            for step, response in zip(STEPS, responses, strict=True):
                cost.wall[step].append(response.seconds * 1000)
                cost.cpu[step].append(response.cpu_us / 1000)
                cost.queries[step].append(response.queries)
    for cost in costs:
        pids = cost.server.worker_pids()
        if pids != workers[cost.app.name]:
            raise RuntimeError(f"{cost.app.name}: the worker restarted during the measurement")
        cost.worker_cpu_per_flow = (cpu_seconds(pids[0]) - before[cost.app.name]) * 1000 / FLOWS

    # Redis commands per flow, one app at a time (the counter is the server's).
    redis_url = f"redis://127.0.0.1:{services.redis_port}/0"
    for cost in costs:
        flows = 20
        start = services.redis_commands(redis_url)
        for index in range(flows):
            login_flow(cost.app, cost.server.port, cost.reader, number(100 + index), "198.51.100.2")
        cost.redis_per_flow = (services.redis_commands(redis_url) - start) / flows
    return costs


# (b) Throughput -------------------------------------------------------------------


def throughput(services: Services, env: dict, stack: contextlib.ExitStack) -> dict:
    this_env = app_env(services, env, "throughput")
    server = start_app(
        stack,
        name="throughput",
        settings_module=PROJECT.settings,
        env=this_env,
        log_dir=services.tmp,
    )
    reader = CodeReader(server.log)
    stack.callback(reader.close)
    latencies: dict[str, list[float]] = defaultdict(list)
    flows = errors = 0
    lock = threading.Lock()
    go = threading.Event()
    deadline = [0.0]

    def client(index: int) -> None:
        nonlocal flows, errors
        phone = number(index)
        login_flow(PROJECT, server.port, reader, phone, client_address(index))  # sign-up
        go.wait()
        for _ in range(100_000):
            if time.monotonic() >= deadline[0]:
                return
            try:
                responses = login_flow(PROJECT, server.port, reader, phone, client_address(index))
            except (FlowError, TimeoutError, OSError) as exc:
                with lock:
                    errors += 1
                print(f"throughput: {exc}", file=sys.stderr)
                continue
            if time.monotonic() >= deadline[0]:
                return  # finished after the window: not counted
            with lock:
                flows += 1
                for step, response in zip(STEPS, responses, strict=True):
                    latencies[step].append(response.seconds * 1000)

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    time.sleep(2)  # the sign-ups
    started = time.monotonic()
    deadline[0] = started + SECONDS
    go.set()
    for thread in threads:
        thread.join(timeout=SECONDS + 60)
    elapsed = min(time.monotonic(), deadline[0]) - started
    return {
        "workers": len(server.worker_pids()),
        "clients": CLIENTS,
        "seconds": elapsed,
        "flows": flows,
        "errors": errors,
        "latencies": latencies,
    }


# (c) A slow upstream -----------------------------------------------------------------


def _slow_clients(port: int, seconds: float, results) -> None:
    """Run in a process of its own: SLOW_CLIENTS people starting logins, back to back."""
    counts = {"started": 0, "errors": 0, "latencies": []}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client(index: int) -> None:
        for attempt in range(100_000):
            if time.monotonic() >= deadline:
                return
            browser = Browser(port=port, address=client_address(1000 + index), timeout=30)
            try:
                form = browser.get("/login/")
                phone = f"+1212555{(index * 500 + attempt) % 10000:04d}"
                response = browser.post("/login/", form, {"number": phone})
                with lock:
                    if response.status == 302 and response.location == "/verify/":
                        counts["started"] += 1
                        counts["latencies"].append(response.seconds * 1000)
                    else:
                        counts["errors"] += 1
            except OSError:
                with lock:
                    counts["errors"] += 1
            finally:
                browser.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(SLOW_CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 60)
    results.put(counts)


def slow_upstream(
    services: Services, env: dict, stack: contextlib.ExitStack, *, worker_class: str
) -> dict:
    ca = services.tmp / f"vonage-ca-{worker_class}.pem"
    info_file = services.tmp / f"vonage-{worker_class}.json"
    upstream = subprocess.Popen(  # noqa: S603 (our own commands, no shell)
        [
            sys.executable,
            "-m",
            "bench.upstream",
            f"--delay={UPSTREAM_DELAY}",
            f"--ca={ca}",
            f"--info={info_file}",
        ],
        cwd=BASE_DIR,
        start_new_session=True,
    )
    stack.callback(stop, upstream)
    for _ in range(300):
        if info_file.exists() or upstream.poll() is not None:
            break
        time.sleep(0.1)
    info = json.loads(info_file.read_text())
    this_env = app_env(
        services,
        env,
        f"slow_{worker_class}",
        VERIFY_BACKEND="vonage",
        VONAGE_API_KEY=info["key"],
        VONAGE_API_SECRET=info["secret"],
        VONAGE_API_HOST=info["host"],
        VONAGE_TIMEOUT="5",
        REQUESTS_CA_BUNDLE=str(ca),
        NO_PROXY="127.0.0.1,localhost",
    )
    server = start_app(
        stack,
        name=f"slow-{worker_class}",
        settings_module=PROJECT.settings,
        env=this_env,
        log_dir=services.tmp,
        # With threads > 1 gunicorn turns a sync worker into gthread: one thread.
        gunicorn_args=(f"--worker-class={worker_class}",)
        + (("--threads=1",) if worker_class == "sync" else ()),
    )
    seconds = SLOW_SECONDS if worker_class == "gthread" else min(SLOW_SECONDS, 10)
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    slow = context.Process(target=_slow_clients, args=(server.port, seconds + 2, results))
    slow.start()
    time.sleep(2)  # until all of them wait on Vonage
    fast: list[float] = []
    errors = 0
    fast_lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def visitor(index: int) -> None:
        nonlocal errors
        browser = Browser(port=server.port, address=client_address(2000 + index), timeout=30)
        next_at = time.monotonic()
        for request in range(100_000):
            if time.monotonic() >= deadline:
                break
            try:
                response = browser.get("/" if request % 2 else "/login/")
                with fast_lock:
                    if response.status == 200:
                        fast.append(response.seconds * 1000)
                    else:
                        errors += 1
            except OSError:
                with fast_lock:
                    errors += 1
            # 10 requests a second each: a steady load, not a flood.
            next_at += 0.1
            time.sleep(max(0.0, next_at - time.monotonic()))
        browser.close()

    visitors = [threading.Thread(target=visitor, args=(i,)) for i in range(4)]
    for thread in visitors:
        thread.start()
    for thread in visitors:
        thread.join(timeout=seconds + 60)
    counts = results.get(timeout=120)
    slow.join(timeout=30)
    return {
        "worker_class": worker_class,
        "workers": len(server.worker_pids()),
        "seconds": seconds,
        "starts": counts["started"],
        "start_errors": counts["errors"],
        "start_p50": percentile(counts["latencies"], 50),
        "fast": fast,
        "fast_errors": errors,
    }


# The report --------------------------------------------------------------------------


def machine() -> str:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    return (
        f"{os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable), {model}, "
        f"{memory_kb / 1024 / 1024:.0f} GiB memory; Linux {platform.release()}; "
        f"Python {platform.python_version()}"
    )


def report(costs, services: Services, load: dict, slow: list[dict]) -> str:
    lines = ["### Benchmark", "", f"Machine: {machine()}.", ""]
    database = "PostgreSQL" if services.postgres_port else "SQLite"
    lines += [
        f"Services: {services.versions()}. "
        f"Database {database}, cache Redis, sessions cached_db, DEBUG off behind a "
        "proxy (X-Forwarded-For/Proto), gunicorn with gunicorn.conf.py. "
        + " ".join(services.notes),
        "",
        f"**(a) Cost per login**: {FLOWS} complete flows per app after {NUMBERS} warm-up "
        "flows, interleaved, one sync gunicorn worker each, console backend (codes read "
        "from the worker's output). Worker CPU from /proc (utime+stime) over all flows.",
        "",
        "| app | worker CPU per flow | vs floor | vs bare floor | queries per flow "
        "| max queries in a step | Redis commands per flow |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    cpu = {cost.app: cost.worker_cpu_per_flow for cost in costs}
    for cost in costs:
        queries = sum(statistics.mean(cost.queries[step]) for step in STEPS)
        worst = max(max(cost.queries[step]) for step in STEPS)
        lines.append(
            f"| {cost.app.name} | {cpu[cost.app]:.1f} ms | {cpu[cost.app] / cpu[FLOOR]:.2f}x "
            f"| {cpu[cost.app] / cpu[BARE]:.2f}x | {queries:.1f} | {worst} "
            f"| {cost.redis_per_flow:.1f} |"
        )
    lines += [
        "",
        "Per step: wall time p50 (client side) / CPU in Django p50 (X-Bench-CPU-us) / queries.",
        "",
        "| step | " + " | ".join(cost.app.name for cost in costs) + " |",
        "|---|" + "---:|" * len(costs),
    ]
    for step in STEPS:
        cells = [
            f"{percentile(c.wall[step], 50):.1f} / {percentile(c.cpu[step], 50):.1f} ms"
            f" / {max(c.queries[step])}"
            for c in costs
        ]
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    project = next(c for c in costs if c.app is PROJECT)
    vs_floor, vs_bare = cpu[PROJECT] / cpu[FLOOR], cpu[PROJECT] / cpu[BARE]
    cheaper = cpu[ALLAUTH] / cpu[PROJECT]
    worst = max(max(project.queries[step]) for step in STEPS)
    lines += [
        "",
        f"Ratios of worker CPU per flow: project / floor **{vs_floor:.2f}x**, project / bare "
        f"floor **{vs_bare:.2f}x**, project / django-allauth {1 / cheaper:.2f}x, i.e. the "
        f"project **{cheaper:.2f}x cheaper** than django-allauth (allauth / project).",
        "",
        "Goals (issue 16): project ≤ 1.45x the bare floor's CPU per flow: "
        f"**{'met' if vs_bare <= 1.45 else 'missed'}** ({vs_bare:.2f}x; "
        f"{vs_floor:.2f}x the floor with the project's middleware); at least 1.3x cheaper "
        f"than django-allauth: **{'met' if cheaper >= 1.3 else 'missed'}** ({cheaper:.2f}x); "
        f"no step over 8 queries: **{'met' if worst <= 8 else 'missed'}** (at most {worst}).",
        "",
        f"**(b) Throughput**: {load['clients']} concurrent clients doing complete flows for "
        f"{load['seconds']:.0f} s against the production configuration ({load['workers']} "
        "gthread workers, the default for this machine); the clients share the machine's "
        "cores with the servers.",
        "",
        f"{load['flows']} flows, **{load['flows'] / load['seconds']:.1f} flows/s** "
        f"({5 * load['flows'] / load['seconds']:.0f} requests/s), {load['errors']} errors.",
        "",
        "| step | p50 | p95 | p99 |",
        "|---|---:|---:|---:|",
    ]
    for step in STEPS:
        values = load["latencies"][step]
        lines.append(
            f"| {step} | {percentile(values, 50):.1f} ms | {percentile(values, 95):.1f} ms "
            f"| {percentile(values, 99):.1f} ms |"
        )
    lines += [
        "",
        f"**(c) A slow upstream**: the Vonage emulator answers every call after "
        f"{UPSTREAM_DELAY * 1000:.0f} ms; {SLOW_CLIENTS} clients start logins back to back "
        "(each waiting on Vonage) while 4 visitors load / and /login/ ten times a second "
        "each.",
        "",
        "| workers | logins started (p50) | visitor requests | p50 | p95 | p99 | max | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in slow:
        fast = run["fast"]
        lines.append(
            f"| {run['workers']} {run['worker_class']} | {run['starts']} "
            f"({run['start_p50']:.0f} ms) | {len(fast)} | {percentile(fast, 50):.1f} ms "
            f"| {percentile(fast, 95):.1f} ms | {percentile(fast, 99):.1f} ms "
            f"| {max(fast, default=float('nan')):.1f} ms | {run['fast_errors']} |"
        )
    gthread = next(run for run in slow if run["worker_class"] == "gthread")
    p99 = percentile(gthread["fast"], 99)
    lines += [
        "",
        f"Goal: p99 of / and /login/ under 100 ms while {SLOW_CLIENTS} clients wait on "
        f"Vonage (gthread, the default): **{'met' if p99 < 100 else 'missed'}** "
        f"({p99:.1f} ms). The sync row, the same number of single-threaded workers, shows "
        "what the threads are for.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    started = time.monotonic()
    with Services() as services:
        if not services.start_redis():
            sys.exit("make bench needs redis-server (apt-get install redis-server)")
        services.start_postgres()
        env = base_env(services)
        print("bench: (a) cost per login…", file=sys.stderr)
        with contextlib.ExitStack() as part:
            costs = cost_per_login(services, env, part)
        print("bench: (b) throughput…", file=sys.stderr)
        with contextlib.ExitStack() as part:
            load = throughput(services, env, part)
        slow = []
        for worker_class in ("gthread", "sync"):
            print(f"bench: (c) slow upstream, {worker_class} workers…", file=sys.stderr)
            with contextlib.ExitStack() as part:
                slow.append(slow_upstream(services, env, part, worker_class=worker_class))
        text = report(costs, services, load, slow)
    out = BASE_DIR / "var" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.md").write_text(text)
    print(text)
    print(
        f"bench: done in {time.monotonic() - started:.0f} s; also in var/bench/results.md",
        file=sys.stderr,
    )
