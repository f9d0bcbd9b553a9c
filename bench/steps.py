"""What each step of a login sends to the database and Redis, and where its CPU goes.

`python -m bench.steps [flows]` runs complete logins of the project in this
process (Django's test client, DEBUG off, the production settings of
`make bench` with the limits lifted, private PostgreSQL and Redis, one client
whose cookies are cleared between flows, as a new browser each time) and
prints, for each of the five steps:

- every SQL statement of one flow, as Django's `execute_wrapper` sees them
  (the way `make bench` counts them);
- every Redis command, from Redis's own MONITOR: the round trips, and apart
  the commands the counters' script runs inside Redis;
- the CPU time (thread time, no profiler) of the parts of the step named in
  PARTS, per flow; parts nest (a view holds the services it calls).

Where `python -m bench.profile` says which functions take the CPU, this says
which round trips a step makes and what each part of it costs. Figures in
process run below those of `make bench`'s gunicorn worker, which serves each
request cold between the other apps' requests; their proportions hold.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import re
import statistics
import sys
import threading
import time
from collections import Counter, defaultdict

STEPS = ("GET /login/", "POST number", "GET /verify/", "POST code", "GET /")
MARK = "bench-steps-mark"

# "module:attribute" as the caller looks it up, and what to call it.
PARTS = {
    "flows.views:PhoneLoginView.form_valid": "start (view)",
    "flows.views:VerifyView.form_valid": "check and finish (view)",
    "flows.views:VerifyView.get_context_data": "code page context",
    "accounts.forms:PhoneNumberField.clean": "number field (phonenumbers)",
    "flows.process:number_holder": "who holds the number (SELECT)",
    "flows.process:verification_event": "log row and line",
    "flows.limits:limit_start": "limits: start (counters script)",
    "flows.limits:limit_check": "limits: check (counters script)",
    "flows.process:live_request_claim": "live request: claim",
    "flows.process:live_request_save": "live request: save",
    "flows.process:live_request_was_verified": "live request: accepted code? (GET)",
    "flows.process:live_request_verified": "live request: accepted code (SET)",
    "flows.process:live_request_end": "live request: end (GET, DEL)",
    "verification.backends.local:LocalCodeBackend.start": "backend start (console)",
    "verification.backends.local:LocalCodeBackend.check": "backend check (console)",
    "flows.process:VerificationProcess.require": "pending verification from session",
    "flows.services:_number_owner": "the number's owner (SELECT)",
    "flows.services:user_login": "login(), one transaction",
    "flows.services:login": "django login(): session moved, last_login",
    "django.contrib.messages.api:add_message": "message",
    "django.template.response:SimpleTemplateResponse.render": "template (TemplateResponse)",
    "flows.views:render": "template (render(): home, with the user)",
    "django.contrib.sessions.middleware:SessionMiddleware.process_response": "session save",
    "django.contrib.auth.middleware:AuthenticationMiddleware.process_request": "auth middleware",
    "django.contrib.messages.middleware:MessageMiddleware.process_response": "messages store",
}


def main() -> None:
    flows = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    from bench.run import project_in_this_process

    with project_in_this_process("bench.steps") as services:
        sql, redis = round_trips(min(flows, 20), redis_port=services.redis_port)
        cpu, parts = cpu_by_part(flows)
    for name in STEPS:
        statements = sql[name]
        commands = redis[name]
        trips = [command for command in commands if not command.startswith("(in script)")]
        print(
            f"\n## {name}: {len(statements)} queries, {len(trips)} Redis round trips "
            f"(+{len(commands) - len(trips)} inside the counters' script), "
            f"CPU p50 {statistics.median(cpu[name]):.0f} us\n"
        )
        print("SQL:")
        for statement in statements:
            print(f"  {statement[:150]}")
        print("Redis:")
        for text, count in Counter(shape(command) for command in commands).items():
            print(f"  {count} x {text}")
        print("CPU by part, us per flow (mean):")
        for label, micros in sorted(parts[name].items(), key=lambda item: -item[1]):
            print(f"  {micros / flows:6.0f}  {label}")


def client_flows(flows: int, step) -> None:
    """Log in `flows` times after a round that signs everybody up; `step(name, measured, …)`."""
    from django.test import Client

    import verification

    verification.outbox = []
    client = Client(HTTP_X_FORWARDED_PROTO="https", HTTP_X_FORWARDED_FOR="198.51.100.9")
    people = [f"+1415555{index + 200:04d}" for index in range(10)]
    for index in range(-len(people), flows):
        measured = index >= 0
        # A new browser: no cookies (one client, so that Django's handler
        # and its middleware are built once, as in a server's worker).
        client.cookies.clear()
        number = people[index % len(people)]
        step("GET /login/", measured, client.get, "/login/")
        step("POST number", measured, client.post, "/login/", {"number": number})
        code = verification.outbox[-1].code
        step("GET /verify/", measured, client.get, "/verify/")
        response = step("POST code", measured, client.post, "/verify/", {"code": code})
        assert response.status_code == 302 and response["Location"] == "/", response
        step("GET /", measured, client.get, "/")


class RedisMonitor:
    """Every command Redis runs, in order, from MONITOR on a connection of its own."""

    def __init__(self, port: int):
        import redis

        self.marker = redis.Redis(host="127.0.0.1", port=port)
        self.client = redis.Redis(host="127.0.0.1", port=port)
        self.commands: list[str] = []
        self._monitor = self.client.monitor().__enter__()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        with contextlib.suppress(Exception):
            while True:
                entry = self._monitor.next_command()
                # Commands a script runs inside Redis are no round trip of their own.
                prefix = "(in script) " if entry["client_type"] == "lua" else ""
                self.commands.append(prefix + entry["command"])

    def mark(self, text: str) -> None:
        self.marker.echo(f"{MARK} {text}")

    def between(self, start: str, end: str) -> list[str]:
        """Return the commands between two marks (waiting until the second is seen)."""
        deadline = time.monotonic() + 5
        while f"ECHO {MARK} {end}" not in self.commands and time.monotonic() < deadline:
            time.sleep(0.01)
        index = self.commands.index(f"ECHO {MARK} {start}")
        stop = self.commands.index(f"ECHO {MARK} {end}")
        return [
            command
            for command in self.commands[index + 1 : stop]
            # The script loads itself once per Redis (EVALSHA's NOSCRIPT answer).
            if not command.startswith("SCRIPT LOAD")
        ]


def round_trips(flows: int, *, redis_port: int) -> tuple[dict, dict]:
    """Return, per step, the SQL statements and the Redis commands of the last flow."""
    from django.db import connections

    monitor = RedisMonitor(redis_port)
    sql: dict[str, list[str]] = {}
    redis: dict[str, list[str]] = {}
    counter = [0]

    def step(name, measured, call, *args):
        statements: list[str] = []

        def record(execute, statement, params, many, context):
            statements.append(statement)
            return execute(statement, params, many, context)

        counter[0] += 1
        start, end = f"{counter[0]}a", f"{counter[0]}b"
        monitor.mark(start)
        with contextlib.ExitStack() as stack:
            for connection in connections.all():
                stack.enter_context(connection.execute_wrapper(record))
            response = call(*args)
        monitor.mark(end)
        if measured:
            sql[name] = statements
            redis[name] = monitor.between(start, end)
        return response

    client_flows(flows, step)
    return sql, redis


def shape(command: str) -> str:
    """Return a Redis command without its values: the command and a key's shape."""
    prefix = ""
    if command.startswith("(in script) "):
        prefix, command = "(in script) ", command.removeprefix("(in script) ")
    parts = command.split(" ")
    name = parts[0].upper()
    key = parts[1].strip('"') if len(parts) > 1 else ""
    key = re.sub(r"[0-9a-f]{16,}", "…", key)
    key = re.sub(r"\+\d{8,15}", "+NUMBER", key)
    key = re.sub(r":\d{6,}", ":N", key)
    key = re.sub(r"(sessions\.cached_db)\w+", r"\1…", key)
    if name in {"EVALSHA", "EVAL"}:
        return f"{name} (counters script, {parts[2] if len(parts) > 2 else '?'} keys)"
    return f"{prefix}{name} {key}"


def cpu_by_part(flows: int) -> tuple[dict, dict]:
    """Return each step's CPU times, and the CPU each of PARTS took in it, over `flows`."""
    current = [""]
    parts: dict[str, Counter] = defaultdict(Counter)
    running: set[str] = set()

    def timed(function, label):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            if label in running:  # counted once when it calls itself
                return function(*args, **kwargs)
            running.add(label)
            started = time.thread_time_ns()
            try:
                return function(*args, **kwargs)
            finally:
                parts[current[0]][label] += (time.thread_time_ns() - started) / 1000
                running.discard(label)

        return wrapper

    for target, label in PARTS.items():
        module_name, path = target.split(":")
        owner = importlib.import_module(module_name)
        *outer, name = path.split(".")
        for attribute in outer:
            owner = getattr(owner, attribute)
        setattr(owner, name, timed(getattr(owner, name), label))

    cpu: dict[str, list[float]] = defaultdict(list)

    def step(name, measured, call, *args):
        current[0] = name if measured else "warm-up"
        started = time.thread_time_ns()
        response = call(*args)
        if measured:
            cpu[name].append((time.thread_time_ns() - started) / 1000)
        return response

    client_flows(flows, step)
    return cpu, parts


if __name__ == "__main__":
    main()
