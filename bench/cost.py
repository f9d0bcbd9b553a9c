"""Part (a) of `make bench` alone: `python -m bench.cost` (BENCH_FLOWS flows, 200 by default).

The cost per login of the project, the two floors and django-allauth, as
`make bench` measures it (bench/run.py), without the throughput and
slow-upstream parts: about a minute, for checking a change to a step.
"""

from __future__ import annotations

import contextlib
import sys

from bench.run import STEPS, Services, base_env, cost_per_login, report


def main() -> None:
    with Services() as services:
        if not services.start_redis():
            sys.exit("bench.cost needs redis-server (apt-get install redis-server)")
        services.start_postgres()
        env = base_env(services)
        with contextlib.ExitStack() as part:
            costs = cost_per_login(services, env, part)
        # report() words all three parts: give it empty (b) and (c), keep (a).
        load = {"clients": 0, "seconds": 1.0, "workers": 0, "flows": 0, "errors": 0}
        load["latencies"] = {step: [] for step in STEPS}
        slow = [{"worker_class": "gthread", "workers": 0, "starts": 0, "start_p50": 0.0}]
        slow[0].update(fast=[], fast_errors=0)
        text = report(costs, services, load, slow)
    print(text.split("**(b) Throughput**")[0].rstrip())


if __name__ == "__main__":
    main()
