"""What the bench measures inside the app: database queries and CPU time per request.

`BenchMiddleware` goes first in MIDDLEWARE (bench settings modules only), so
it sees the whole request, session save and all, and answers in two headers:
X-Bench-Queries (statements sent to the database) and X-Bench-CPU-us (CPU time
of the request's thread, in microseconds; gunicorn's own HTTP parsing and
writing are outside it, the /proc figure of the worker includes them).
"""

from __future__ import annotations

import contextlib
import time

from django.db import connections


class BenchMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        queries = 0

        def count(execute, sql, params, many, context):
            nonlocal queries
            queries += 1
            return execute(sql, params, many, context)

        started = time.thread_time_ns()
        with contextlib.ExitStack() as stack:
            for connection in connections.all():
                stack.enter_context(connection.execute_wrapper(count))
            response = self.get_response(request)
        response["X-Bench-Queries"] = str(queries)
        response["X-Bench-CPU-us"] = str((time.thread_time_ns() - started) // 1000)
        return response


# The site's apps: middleware of theirs belongs to the site's features.
SITE_APPS = ("accounts.", "flows.", "verification.", "verificationlog.")


def with_bench_middleware(middleware: list[str]) -> list[str]:
    return ["bench.instrument.BenchMiddleware", *middleware]


def raise_limits(namespace: dict) -> None:
    """Lift every rate limit and cap of the project's settings out of the bench's way.

    The limits are still counted (their cost is part of a login), but a bench
    that logs in hundreds of times a minute from a few addresses never hits
    them. Names are matched by pattern, so limits added later are lifted too.
    """
    import re

    for name, value in list(namespace.items()):
        if not name.isupper():
            continue
        if isinstance(value, str) and re.fullmatch(r"\d+/\d*[smhd]", value):
            namespace[name] = "10000000/h"
        elif name.startswith("VERIFY_MAX_SENDS") and isinstance(value, int):
            namespace[name] = 10**9
        elif name == "VERIFY_MIN_CONVERSION":
            namespace[name] = 0.0
