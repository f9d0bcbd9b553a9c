"""Where a login's time goes: `python -m bench.profile [flows]`.

Runs complete logins of the project in this process (Django's test client,
DEBUG off, private PostgreSQL and Redis like `make bench`) and prints, for each
of the five steps, the SQL statements of one flow, the cache calls, and the
functions that took the most CPU over all flows (cProfile). For finding what
to optimise after `make bench`; its timings include the profiler's overhead.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import sys
import time
from collections import Counter, defaultdict

STEPS = ("GET /login/", "POST number", "GET /verify/", "POST code", "GET /")


def main() -> None:
    flows = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    from bench.run import project_in_this_process

    with project_in_this_process("bench.profile"):
        profile(flows)


def profile(flows: int) -> None:
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client

    import verification

    verification.outbox = []
    calls: dict[str, Counter] = defaultdict(Counter)
    current = [""]
    for name in ("get", "set", "add", "delete", "incr", "get_many", "set_many", "touch"):
        original = getattr(cache, name)

        def counted(*args, _name=name, _original=original, **kwargs):
            calls[current[0]][_name] += 1
            return _original(*args, **kwargs)

        setattr(cache, name, counted)

    profilers = {step: cProfile.Profile(time.process_time) for step in STEPS}
    sql: dict[str, list[str]] = {}
    headers = {"HTTP_X_FORWARDED_PROTO": "https", "HTTP_X_FORWARDED_FOR": "198.51.100.9"}

    def step(name, index, call, *args):
        current[0] = name
        before = len(connection.queries)
        profilers[name].enable()
        response = call(*args)
        profilers[name].disable()
        if index == flows - 1:
            sql[name] = [q["sql"] for q in connection.queries[before:]]
        return response

    people = [f"+1415555{index + 200:04d}" for index in range(20)]
    for index in range(-len(people), flows):
        # The first round signs everybody up and warms caches: not counted.
        connection.queries_log.clear()
        connection.force_debug_cursor = True
        client = Client(**headers)
        number = people[index % len(people)]
        step("GET /login/", index, client.get, "/login/")
        step("POST number", index, client.post, "/login/", {"number": number})
        code = verification.outbox[-1].code
        step("GET /verify/", index, client.get, "/verify/")
        response = step("POST code", index, client.post, "/verify/", {"code": code})
        assert response.status_code == 302 and response["Location"] == "/", response
        step("GET /", index, client.get, "/")
        if index == -1:
            for profiler in profilers.values():
                profiler.clear()
            calls.clear()

    for name in STEPS:
        print(f"\n## {name}\n")
        print(f"cache calls per flow: {dict((k, v / flows) for k, v in calls[name].items())}")
        print(f"SQL ({len(sql.get(name, []))}):")
        for statement in sql.get(name, []):
            print(f"  {statement[:220]}")
        out = io.StringIO()
        stats = pstats.Stats(profilers[name], stream=out)
        print(f"CPU by package, ms per flow: {by_package(stats, flows)}")
        stats.sort_stats("cumulative").print_stats(
            r"(accounts|flows|verification|passwordless|django_ratelimit)", 25
        )
        print(out.getvalue()[-6000:])


PACKAGES = (
    ("accounts/", "accounts"),
    ("flows/", "flows"),
    ("verification/", "verification"),
    ("verificationlog/", "verificationlog"),
    ("passwordless/", "passwordless"),
    ("django_ratelimit", "django-ratelimit"),
    ("django/template", "django templates"),
    ("django/db", "django ORM"),
    ("django/contrib/sessions", "django sessions"),
    ("django/contrib/messages", "django messages"),
    ("django/middleware", "django middleware"),
    ("django/contrib/auth", "django auth"),
    ("django/", "django (other)"),
    ("django_redis", "django-redis"),
    ("redis/", "redis-py"),
    ("psycopg", "psycopg"),
    ("phonenumbers", "phonenumbers"),
    ("logging", "logging"),
    ("json", "json"),
)


def by_package(stats: pstats.Stats, flows: int) -> dict[str, float]:
    """Sum the time spent in each package's own code (tottime), per flow."""
    totals: Counter = Counter()
    for (filename, _line, _name), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():
        label = next((label for part, label in PACKAGES if part in filename), "other")
        totals[label] += tottime * 1000 / flows
    return {label: round(ms, 2) for label, ms in totals.most_common()}


if __name__ == "__main__":
    main()
