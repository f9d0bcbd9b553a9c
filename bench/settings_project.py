"""The project as deployed, with its rate limits lifted; BENCH_MIDDLEWARE=1 adds the counters."""

import os

from bench.instrument import raise_limits, with_bench_middleware
from passwordless.settings import *  # noqa: F403
from passwordless.settings import MIDDLEWARE

raise_limits(globals())
if os.environ.get("BENCH_MIDDLEWARE"):
    MIDDLEWARE = with_bench_middleware(MIDDLEWARE)
