"""`make bench-faults`: 30 people log in while Redis or PostgreSQL falters (issue 17).

The production configuration (DEBUG off behind a proxy, gunicorn with
gunicorn.conf.py, PostgreSQL, Redis for the cache and the cached_db sessions,
Verify v2 through the real SDK to the tests' emulator, tests/emulator,
answering each call after UPSTREAM_DELAY) serves PEOPLE people who log in
back to back: GET /login/, POST the number, GET /verify/, POST the code read
from the emulator (the SMS the phone received), GET /. A person whose step
gets a handled answer (the 503 page, a message, no answer at all) does that
step again after PAUSE seconds, as a person presses reload, within
LOGIN_BOUND seconds and MAX_ANSWERS answers per login; a person sent back to
/login/ starts again from there.

One scenario at a time, each on a fresh app (database, Redis database,
emulator, gunicorn), FAULT_AT seconds into a window of SECONDS:

- none: the baseline, to show the harness itself loses nothing;
- redis-frozen: Redis stopped for REDIS_OUTAGE seconds with SIGSTOP, then
  SIGCONT: connections hang until the client's socket timeout;
- redis-restart: Redis shut down (SHUTDOWN SAVE) for REDIS_OUTAGE seconds and
  started again with its snapshot, as a Redis with persistence (Debian's
  default) comes back: connections are refused meanwhile;
- redis-lost: the same, but it comes back empty, as one without persistence;
- postgres-restart: a fast shutdown (sessions ended), started again
  POSTGRES_DOWN seconds after it was asked to stop (Debian's `pg_ctlcluster
  restart` takes ~3 s).

`python -m bench.faults [scenario ...]` runs the named ones only.

Counted per scenario: requests, HTTP 500s, handled 503s, logins completed,
logins lost (a person who received a code and could not finish within the
bound, or was sent a second code), logins that started over from /login/ but
finished on their one code, codes sent per login, a person ever logged in as
someone else, and /healthz's answers. Printed as Markdown (also
var/bench/faults.md), with each HTTP 500's request and the exception
gunicorn's log gives for it, and for a few lost logins their requests and
what the emulator saw of their codes (sent, checked); the logs are kept in
var/bench/faults-<scenario>.log.

PostgreSQL and Redis are private instances on free loopback ports in a
temporary directory (bench/services.py starts PostgreSQL; Redis is started
here, to be shut down and started again on the same port), so stopping them
harms nobody else. Everything started is stopped at the end, on Ctrl-C too.
A measurement, not a test: it never fails on a missed target.
"""

from __future__ import annotations

import contextlib
import functools
import html
import http.client
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.client import CSRF_FIELD, Browser, Response
from bench.run import PROJECT, app_env, base_env, client_address, number
from bench.services import BASE_DIR, Services, free_port, start_app, stop, wait_for_port
from bench.upstream import SlowVonageEmulator

PEOPLE = int(os.environ.get("FAULTS_PEOPLE", "30"))
SECONDS = float(os.environ.get("FAULTS_SECONDS", "40"))  # the measured window
FAULT_AT = 10.0  # seconds into the window
REDIS_OUTAGE = 10.0
POSTGRES_DOWN = 3.0
UPSTREAM_DELAY = 0.2  # seconds the emulator takes to answer, as Vonage does
PAUSE = 1.0  # seconds before a person presses reload
LOGIN_BOUND = 60.0  # seconds a person keeps trying one login
MAX_ANSWERS = 100  # answers a person reads in one login, at most
REQUEST_TIMEOUT = 30.0  # a browser's patience for one answer
HEALTH_EVERY = 0.5  # seconds between two /healthz probes
TRAILS = 4  # lost logins whose requests the report lists
TRAIL_ENDS = 6  # of a long list of requests, the first and the last few

MESSAGE = re.compile(r'<li class="message message-[\w-]+">(?P<text>.*?)</li>', re.S)
HELLO = re.compile(r"<h1>Hello (?P<who>[^<]*)</h1>")
OUT = BASE_DIR / "var" / "bench"


# The services, and the faults -------------------------------------------------------


class Redis:
    """A private redis-server on a free loopback port: frozen, or shut down and started again."""

    def __init__(self, stack: contextlib.ExitStack, directory: Path):
        binary = shutil.which("redis-server")
        if not binary:
            sys.exit("bench.faults needs redis-server (apt-get install redis-server)")
        self.stack = stack
        self.port = free_port()
        self.log = directory / "redis.log"
        self.args = [
            binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--databases",
            "32",
        ]
        self.directory = directory
        self.process: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        process = subprocess.Popen(  # noqa: S603 (our own command, no shell)
            self.args,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=self.directory,
        )
        self.stack.callback(stop, process)
        self.process = process
        wait_for_port(self.port, process)

    def freeze(self, seconds: float, stopping: threading.Event) -> None:
        """SIGSTOP for `seconds`: connections are accepted and never answered."""
        os.kill(self.process.pid, signal.SIGSTOP)
        try:
            stopping.wait(seconds)
        finally:
            os.kill(self.process.pid, signal.SIGCONT)

    def down(self, seconds: float, stopping: threading.Event, *, keep_data: bool) -> None:
        """Shut down for `seconds` (connections refused), then start again.

        keep_data: SHUTDOWN SAVE, and the snapshot is loaded again on start, as
        a Redis with persistence (Debian's default) comes back from a restart;
        otherwise it comes back empty, as one without persistence does.
        """
        import redis

        began = time.monotonic()
        snapshot = self.directory / "dump.rdb"
        if keep_data:
            client = redis.Redis(host="127.0.0.1", port=self.port)
            try:
                client.shutdown(save=True)
            finally:
                client.close()
            self.process.wait(timeout=60)
        else:
            stop(self.process)
            snapshot.unlink(missing_ok=True)  # an earlier scenario's
        try:
            stopping.wait(max(0.0, seconds - (time.monotonic() - began)))
        finally:
            self.start()


class Postgres:
    """Restart the private PostgreSQL of `services` the way pg_ctlcluster restart does."""

    def __init__(self, services: Services):
        self.services = services
        self.data = services.tmp / "pg"  # where Services.start_postgres put it

    def restart(self, down: float, stopping: threading.Event) -> None:
        """Fast shutdown (SIGINT: sessions ended), then the same command again `down` s later."""
        pid = int((self.data / "postmaster.pid").read_text().split()[0])
        # postmaster.opts holds the command line the server was started with
        # (what pg_ctl restart reuses).
        args = shlex.split((self.data / "postmaster.opts").read_text())
        began = time.monotonic()
        os.kill(pid, signal.SIGINT)
        try:
            deadline = began + 30
            while (self.data / "postmaster.pid").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            stopping.wait(max(0.0, down - (time.monotonic() - began)))
        finally:
            self._start(args)

    def _start(self, args: list[str]) -> None:
        # PostgreSQL refuses to run as root: as the postgres user then, as Services does.
        as_user = {}
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            as_user = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
        process = subprocess.Popen(  # noqa: S603 (our own command, no shell)
            args,
            stdout=subprocess.DEVNULL,
            stderr=(self.services.tmp / "postgres.log").open("ab"),
            **as_user,
            start_new_session=True,
            cwd=self.services.tmp,
        )
        self.services.callback(stop, process)
        wait_for_port(self.services.postgres_port, process)
        self.services._pg_ready(self.services.postgres_port)


@dataclass(frozen=True)
class Scenario:
    name: str
    label: str  # the table's first column
    inject: Callable[[Redis, Postgres, threading.Event], None] | None


SCENARIOS = (
    Scenario("none", "none (baseline)", None),
    Scenario(
        "redis-frozen",
        f"Redis stopped for {REDIS_OUTAGE:.0f} s (SIGSTOP: connections hang)",
        lambda redis, postgres, stopping: redis.freeze(REDIS_OUTAGE, stopping),
    ),
    Scenario(
        "redis-restart",
        f"Redis shut down for {REDIS_OUTAGE:.0f} s, restarted with its data",
        lambda redis, postgres, stopping: redis.down(REDIS_OUTAGE, stopping, keep_data=True),
    ),
    Scenario(
        "redis-lost",
        f"Redis shut down for {REDIS_OUTAGE:.0f} s, restarted empty",
        lambda redis, postgres, stopping: redis.down(REDIS_OUTAGE, stopping, keep_data=False),
    ),
    Scenario(
        "postgres-restart",
        f"PostgreSQL restarted (fast shutdown, up again after {POSTGRES_DOWN:.0f} s)",
        lambda redis, postgres, stopping: postgres.restart(POSTGRES_DOWN, stopping),
    ),
)


# The upstream: the emulator in this process, its messages the people's phones -----------


class Upstream(SlowVonageEmulator):
    delay = UPSTREAM_DELAY

    def sent(self, phone: str) -> list[str]:
        """Return the codes sent to `phone` so far (SMS and calls), oldest first."""
        return [message.code for message in self.messages if message.number == phone]

    def code(self, phone: str, *, after: int, timeout: float = 5) -> str | None:
        """Return the newest code on `phone`, waiting a moment for one after the `after`-th."""
        deadline = time.monotonic() + timeout
        while True:
            codes = self.sent(phone)
            if len(codes) > after or time.monotonic() >= deadline:
                return codes[-1] if codes else None
            time.sleep(0.05)

    def story(self, phone: str, *, after: int, epoch: float) -> str:
        """Say what happened upstream to the requests whose codes `phone` got after the `after`-th.

        Times in seconds since `epoch` (time.time() at the start of the window).
        """
        self.messages  # noqa: B018 (brings every request's events and state up to date)
        with self._lock:
            sent = [m for m in self.rules.messages if m.number == phone]
            ids = list(dict.fromkeys(m.request_id for m in sent))
            mine = list(dict.fromkeys(m.request_id for m in sent[after:]))
            parts = []
            for request_id in mine:
                verification = self.rules.requests[request_id]
                checks = ", ".join(
                    f"{check['status']} at {check['at'] - epoch:.1f} s"
                    for check in verification.checks
                )
                parts.append(
                    f"request {ids.index(request_id) + 1} (code sent at "
                    f"{verification.events[0].at - epoch:.1f} s): checks {checks or 'none'}, "
                    f"{verification.state.value}"
                )
        return "; ".join(parts) or "no code sent"


# The people -------------------------------------------------------------------------


@dataclass
class Tally:
    """What one scenario's people saw, counted from the measured window's logins."""

    requests: int = 0
    unusual: Counter = field(default_factory=Counter)  # (step, what) -> answers
    status: Counter = field(default_factory=Counter)  # HTTP status -> answers
    errors: list = field(default_factory=list)  # (seconds into the window, step) of each 500
    logins: int = 0
    lost: list = field(default_factory=list)  # (person, why, what they went through)
    gave_up_before_a_code: int = 0
    wrong_person: int = 0
    codes: int = 0
    longest: float = 0.0
    health: Counter = field(default_factory=Counter)
    health_down: list = field(default_factory=list)  # seconds into the window of each non-200
    started_over: int = 0  # logins sent back to /login/ that still finished on one code
    epoch: float = 0.0  # time.time() at the start of the window
    lock: threading.Lock = field(default_factory=threading.Lock)


def seen(response: Response) -> str:
    """Say in a few words what a person saw in an answer that did not move them on."""
    if response.status == 503:
        # A cookie on a 503 outlives the answer: worth knowing when a reload then fails.
        cookies = sorted(
            {
                header.split("=", 1)[0].strip()
                for header in response.headers.get_all("Set-Cookie") or []
            }
        )
        return "the 503 page" + (f" (Set-Cookie: {', '.join(cookies)})" if cookies else "")
    if response.status == 500:
        return "the 500 page"
    if response.status == 429:
        return "the 429 page"
    if response.status == 400 and "Bad Request (400)" in response.text:
        return "Django's Bad Request page (400)"
    if response.status == 403 and "This form has expired" in response.text:
        return "the form-expired page (403)"
    if response.status in (301, 302, 303):
        return f"sent to {response.location}"
    found = MESSAGE.search(response.text)
    message = ""
    if found:
        message = html.unescape(re.sub(r"<[^>]+>", "", found["text"])).strip()
        message = f"“{re.sub(r'[+][0-9][0-9 •]*[0-9]', '(number)', message)}”"
    if response.status == 200 and "<h1>Welcome</h1>" in response.text:
        return "the home page, logged out" + (f", with {message}" if message else "")
    return message or f"HTTP {response.status}"


class Person:
    def __init__(self, index: int, port: int, upstream: Upstream):
        self.index = index
        self.number = number(index)
        self.address = client_address(index)
        self.port = port
        self.upstream = upstream

    def login(self, tally: Tally | None, started_at: float) -> None:
        """Log in from a new browser, reloading what fails; count it in `tally` (None: warm-up)."""
        browser = Browser(port=self.port, address=self.address, timeout=REQUEST_TIMEOUT)
        before = len(self.upstream.sent(self.number))
        began = time.monotonic()
        deadline = began + LOGIN_BOUND
        step, form, verify, done, sent_back = "GET /login/", None, None, False, False
        trail: list[str] = []  # what this login went through, for the report of a lost one

        def ask(call, ok) -> Response | None:
            try:
                response = call()
            except (OSError, http.client.HTTPException) as exc:
                response, what = None, f"no answer ({type(exc).__name__})"
            else:
                what = None if ok(response) else seen(response)
            if what or step in {"POST /login/", "POST /verify/"}:
                at = time.monotonic() - started_at
                trail.append(f"{at:.1f} s {step}: {what or response.status}")
            if tally is not None:
                with tally.lock:
                    tally.requests += 1
                    if response is not None:
                        tally.status[response.status] += 1
                        if response.status == 500:
                            tally.errors.append((time.monotonic() - started_at, step))
                    if what:
                        tally.unusual[(step, what)] += 1
            return response

        try:
            for _ in range(MAX_ANSWERS):
                if done or time.monotonic() >= deadline:
                    break
                moved = False
                if step == "GET /login/":
                    r = ask(lambda: browser.get("/login/"), quiet_form)
                    if r is not None and is_form(r):
                        form, step, moved = r, "POST /login/", True
                elif step == "POST /login/":
                    r = ask(
                        functools.partial(browser.post, "/login/", form, {"number": self.number}),
                        lambda r: redirected(r, "/verify/"),
                    )
                    if r is not None and redirected(r, "/verify/"):
                        step, moved = "GET /verify/", True
                    elif r is not None and is_form(r):
                        form = r  # the form again, with a message: sent again from it
                    elif r is not None and r.status == 403:
                        step = "GET /login/"  # "Go back, reload the page and try again"
                    elif r is not None and r.status in (301, 302, 303):
                        step = "GET /login/"
                elif step == "GET /verify/":
                    r = ask(lambda: browser.get("/verify/"), quiet_form)
                    if r is not None and is_form(r):
                        verify, step, moved = r, "POST /verify/", True
                    elif r is not None and r.status in (301, 302, 303):
                        step, sent_back = "GET /login/", True
                elif step == "POST /verify/":
                    code = self.upstream.code(self.number, after=before)
                    r = ask(
                        functools.partial(browser.post, "/verify/", verify, {"code": code or ""}),
                        lambda r: redirected(r, "/"),
                    )
                    if r is not None and redirected(r, "/"):
                        step, moved = "GET /", True
                    elif r is not None and is_form(r):
                        verify = r
                    elif r is not None and r.status == 403:
                        step = "GET /verify/"  # "Go back, reload the page and try again"
                    elif r is not None and redirected(r, "/verify/"):
                        step = "GET /verify/"
                    elif r is not None and r.status in (301, 302, 303):
                        step, sent_back = "GET /login/", True
                elif step == "GET /":
                    r = ask(lambda: browser.get("/"), lambda r: logged_in(r))
                    if r is not None and logged_in(r):
                        done = True
                        who = re.sub(r"\D", "", HELLO.search(r.text)["who"])
                        if tally is not None and who != re.sub(r"\D", "", self.number):
                            with tally.lock:
                                tally.wrong_person += 1
                    elif r is not None and r.status == 200:
                        step, sent_back = "GET /login/", True  # not logged in after all
                if not moved and not done:
                    time.sleep(PAUSE)  # then reload
        finally:
            browser.close()
        codes = len(self.upstream.sent(self.number)) - before
        if tally is None:
            if not done:
                raise RuntimeError(f"warm-up: {self.number[:-2]}•• could not log in")
            return
        with tally.lock:
            tally.codes += codes
            tally.longest = max(tally.longest, time.monotonic() - began)
            if done:
                tally.logins += 1
            lost = None
            if codes > 1:
                lost = f"{codes} codes sent"
            elif not done and codes:
                lost = "sent back to /login/" if sent_back else f"stuck at {step}"
            elif done and sent_back:
                tally.started_over += 1
            if lost:
                upstream = self.upstream.story(self.number, after=before, epoch=tally.epoch)
                tally.lost.append((self.index, lost, [*trail, f"upstream: {upstream}"]))
            elif not done:
                tally.gave_up_before_a_code += 1


def is_form(response: Response) -> bool:
    return response.status == 200 and CSRF_FIELD.search(response.text) is not None


def quiet_form(response: Response) -> bool:
    """A form as it comes on the way of a login: no message about something gone wrong."""
    return is_form(response) and MESSAGE.search(response.text) is None


def redirected(response: Response, to: str) -> bool:
    return response.status == 302 and urllib.parse.urlsplit(response.location or "").path == to


def logged_in(response: Response) -> bool:
    return response.status == 200 and HELLO.search(response.text) is not None


# One scenario -------------------------------------------------------------------------


@dataclass
class Result:
    scenario: Scenario
    tally: Tally
    fault_window: tuple[float, float] | None
    log: Path
    log_errors: list[str]
    outage_lines: list[str]
    access_500: int


def run_scenario(
    scenario: Scenario, services: Services, redis: Redis, postgres: Postgres, env: dict
) -> Result:
    with contextlib.ExitStack() as stack:
        ca = services.tmp / f"vonage-ca-{scenario.name}.pem"
        upstream = Upstream(ca_bundle=ca)
        stack.callback(upstream.close)
        this_env = app_env(
            services,
            env,
            f"faults_{scenario.name.replace('-', '_')}",
            VERIFY_BACKEND="vonage",
            VONAGE_API_KEY=upstream.api_key,
            VONAGE_API_SECRET=upstream.api_secret,
            VONAGE_API_HOST=upstream.host,
            REQUESTS_CA_BUNDLE=str(ca),
            NO_PROXY="127.0.0.1,localhost",
        )
        server = start_app(
            stack,
            name=f"faults-{scenario.name}",
            settings_module=PROJECT.settings,
            env=this_env,
            log_dir=services.tmp,
        )
        people = [Person(index, server.port, upstream) for index in range(PEOPLE)]

        # Warm-up: each person signs up (their first login), all at once.
        warm = [threading.Thread(target=p.login, args=(None, 0.0), daemon=True) for p in people]
        for thread in warm:
            thread.start()
        for thread in warm:
            thread.join(timeout=LOGIN_BOUND + REQUEST_TIMEOUT)

        tally = Tally()
        stopping = threading.Event()
        started_at = time.monotonic()
        tally.epoch = time.time()
        window_ends = started_at + SECONDS
        fault_window: list[float] = []

        def person(p: Person) -> None:
            for _ in range(100_000):
                if stopping.is_set() or time.monotonic() >= window_ends:
                    return
                p.login(tally, started_at)

        def fault() -> None:
            if stopping.wait(FAULT_AT) or scenario.inject is None:
                return
            fault_window.append(time.monotonic() - started_at)
            try:
                scenario.inject(redis, postgres, stopping)
            finally:
                fault_window.append(time.monotonic() - started_at)

        def health() -> None:
            browser = Browser(port=server.port, address="127.0.0.1", timeout=REQUEST_TIMEOUT)
            try:
                while not stopping.wait(HEALTH_EVERY) and time.monotonic() < window_ends:
                    at = time.monotonic() - started_at
                    try:
                        status = browser.get("/healthz").status
                    except (OSError, http.client.HTTPException):
                        status = "no answer"
                    with tally.lock:
                        tally.health[status] += 1
                        if status != 200:
                            tally.health_down.append(at)
            finally:
                browser.close()

        threads = [threading.Thread(target=person, args=(p,), daemon=True) for p in people]
        injector = threading.Thread(target=fault, daemon=True)
        prober = threading.Thread(target=health, daemon=True)
        try:
            for thread in [*threads, injector, prober]:
                thread.start()
            for thread in threads:
                # The window, then the logins under way finish within their bound.
                thread.join(timeout=max(0.0, window_ends - time.monotonic()) + LOGIN_BOUND + 35)
        finally:
            stopping.set()
            injector.join(timeout=60)  # the fault undone: Redis running, PostgreSQL up
            prober.join(timeout=REQUEST_TIMEOUT + 5)
        time.sleep(1)  # the last lines of the log
        log_errors, outage_lines, access_500 = read_log(server.log)
        OUT.mkdir(parents=True, exist_ok=True)
        kept = OUT / f"faults-{scenario.name}.log"
        shutil.copyfile(server.log, kept)
    return Result(
        scenario,
        tally,
        tuple(fault_window) if len(fault_window) == 2 else None,
        kept,
        log_errors,
        outage_lines,
        access_500,
    )


def read_log(path: Path) -> tuple[list[str], list[str], int]:
    """Return the site's error records with a traceback, its outage lines, and the 500s logged."""
    errors, outages, access_500 = [], [], 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if not isinstance(entry, dict):
            continue
        message = str(entry.get("message", ""))
        if entry.get("logger") == "gunicorn.access" and " status=500 " in message:
            access_500 += 1
        elif message.startswith("dependency "):
            outages.append(f"{entry.get('time', '')[11:23]} {message}")
        elif entry.get("level") in {"ERROR", "CRITICAL"}:
            exception = str(entry.get("exception", "")).strip().splitlines()
            last = exception[-1] if exception else ""
            where = next(
                (
                    line.strip()
                    for line in reversed(exception)
                    if line.strip().startswith('File "') and "/site-packages/" not in line
                ),
                "",
            )
            # The text of a database error may quote a row: no long digit runs.
            text = re.sub(r"\d{7,}", "•••", f"{message} — {last} ({where})")
            errors.append(f"{entry.get('time', '')[11:23]} {entry.get('logger')}: {text}")
    return errors, outages, access_500


# The report --------------------------------------------------------------------------


def commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607 (git on PATH)
            cwd=BASE_DIR,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head


def saw(tally: Tally) -> str:
    by_what: dict[str, Counter] = {}
    for (step, what), count in tally.unusual.items():
        by_what.setdefault(what, Counter())[step] += count
    if not by_what:
        return "nothing unusual"
    parts = []
    for what, steps in sorted(by_what.items(), key=lambda item: -sum(item[1].values())):
        where = ", ".join(f"`{step}` x{count}" for step, count in steps.most_common())
        parts.append(f"{what} on {where}")
    return "; ".join(parts)


def examples(lost: list) -> list:
    """Pick up to TRAILS lost logins, the first of each reason first."""
    firsts = list({why: (index, why, trail) for index, why, trail in reversed(lost)}.values())
    rest = [entry for entry in lost if entry not in firsts]
    return (firsts[::-1] + rest)[:TRAILS]


def report(results: list[Result], services: Services, seconds: float) -> str:
    lines = [
        "### Faults",
        "",
        f"Commit {commit()}; {services.versions()}; gunicorn with gunicorn.conf.py, "
        "DEBUG off behind a proxy, sessions cached_db, Verify v2 against the emulator "
        f"answering after {UPSTREAM_DELAY * 1000:.0f} ms. {PEOPLE} people log in back to "
        f"back for {SECONDS:.0f} s per scenario, the fault {FAULT_AT:.0f} s in; a person "
        f"reloads a failed step after {PAUSE:.0f} s, for up to {LOGIN_BOUND:.0f} s per login.",
        "",
        f"| fault ({PEOPLE} people logging in) | what people saw | HTTP 500 | logins lost |",
        "|---|---|---|---|",
    ]
    for result in results:
        tally = result.tally
        lines.append(
            f"| {result.scenario.label} | {saw(tally)} | {tally.status[500]} | {len(tally.lost)} |"
        )
    lines += [
        "",
        "| fault | requests | HTTP 500 | 503 | logins completed | lost | started over on the "
        "same code | gave up before a code | codes sent per login | wrong person | longest login "
        "| /healthz not 200 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for result in results:
        tally = result.tally
        per_login = tally.codes / tally.logins if tally.logins else float("nan")
        down = (
            f"{len(tally.health_down)} of {sum(tally.health.values())} probes "
            f"({tally.health_down[0]:.1f}-{tally.health_down[-1]:.1f} s)"
            if tally.health_down
            else f"0 of {sum(tally.health.values())}"
        )
        lines.append(
            f"| {result.scenario.name} | {tally.requests} | {tally.status[500]} "
            f"| {tally.status[503]} | {tally.logins} | {len(tally.lost)} "
            f"| {tally.started_over} | {tally.gave_up_before_a_code} | {per_login:.3f} "
            f"| {tally.wrong_person} | {tally.longest:.1f} s | {down} |"
        )
    lines.append("")
    for result in results:
        tally = result.tally
        window = (
            f"fault from {result.fault_window[0]:.1f} s to {result.fault_window[1]:.1f} s"
            if result.fault_window
            else "no fault"
        )
        lines.append(
            f"- **{result.scenario.name}** ({window}; log: "
            f"{result.log.relative_to(BASE_DIR)}): outage log lines: "
            + ("; ".join(f"`{line}`" for line in result.outage_lines) or "none")
            + "."
        )
        if tally.lost:
            lost = Counter(why for _, why, _ in tally.lost)
            lines.append(
                "  Lost: " + ", ".join(f"{why} x{count}" for why, count in lost.items()) + "."
            )
            for index, why, trail in examples(tally.lost):
                if len(trail) > 2 * TRAIL_ENDS + 1:
                    trail = [*trail[:TRAIL_ENDS], "…", *trail[-TRAIL_ENDS - 1 :]]
                lines.append(f"  - person {index} ({why}): " + "; ".join(trail))
        if tally.errors or result.access_500 or result.log_errors:
            steps = Counter(step for _, step in tally.errors)
            lines.append(
                "  HTTP 500 on "
                + ", ".join(f"`{step}` x{count}" for step, count in steps.items())
                + f" ({result.access_500} in the access log), at "
                + ", ".join(f"{at:.1f} s" for at, _ in tally.errors[:20])
                + ". Errors in the log:"
            )
            for line in Counter(result.log_errors).most_common(15):
                lines.append(f"  - {line[1]}x `{line[0]}`")
    lines += ["", f"Run time: {seconds:.0f} s."]
    return "\n".join(lines) + "\n"


def interrupted(signum, frame) -> None:
    """SIGTERM unwinds like Ctrl-C: every server started is stopped on the way out."""
    raise KeyboardInterrupt


def main() -> None:
    started = time.monotonic()
    wanted = set(sys.argv[1:])
    unknown = wanted - {scenario.name for scenario in SCENARIOS}
    if unknown:
        sys.exit(
            f"unknown scenario {', '.join(sorted(unknown))}; choose among "
            + ", ".join(scenario.name for scenario in SCENARIOS)
        )
    signal.signal(signal.SIGTERM, interrupted)
    results = []
    with Services() as services:
        if not services.start_postgres():
            sys.exit("bench.faults needs PostgreSQL (apt-get install postgresql)")
        redis = Redis(services, services.tmp)
        services.redis_port = redis.port  # Services hands out its databases
        postgres = Postgres(services)
        env = base_env(services)
        for scenario in SCENARIOS:
            if wanted and scenario.name not in wanted:
                continue
            print(f"faults: {scenario.name}…", file=sys.stderr)
            results.append(run_scenario(scenario, services, redis, postgres, env))
        text = report(results, services, time.monotonic() - started)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "faults.md").write_text(text)
    print(text)
    print("faults: also in var/bench/faults.md", file=sys.stderr)


if __name__ == "__main__":
    main()
