"""bench/settings_project.py for bench/decoy_timing.py, with the decoy's earlier pause on request.

BENCH_DECOY_PAUSE=before puts back, in this process only, the decoy of before
issue 14 item 8: a pause as long as the provider lately took, and then the
stand-in's own work on top of it. Unset, the site runs as it is (the stand-in's
work padded up to the provider's time). The site's apps are not changed: the switch
replaces one method of the running process, from a middleware, because the
models are not loaded yet while settings are read.
"""

import os
import secrets
import time

from bench.settings_project import *  # noqa: F403
from bench.settings_project import MIDDLEWARE

DECOY_PAUSE = os.environ.get("BENCH_DECOY_PAUSE", "")
if DECOY_PAUSE not in {"", "before"}:
    raise ValueError("BENCH_DECOY_PAUSE must be empty (the site as it is) or 'before'")
if DECOY_PAUSE == "before":
    MIDDLEWARE = ["bench.settings_decoy.PauseBeforeStandIn", *MIDDLEWARE]


_random = secrets.SystemRandom()


def _pause_then_stand_in(self, kind, call, *args):
    """Wait the provider's learned time, then run the stand-in: the decoy before item 8."""
    time.sleep(self.seconds[kind] * _random.uniform(0.9, 1.1))
    return call(*args)


class PauseBeforeStandIn:
    """Install the earlier decoy pause when Django builds its middleware (apps loaded)."""

    def __init__(self, get_response):
        # The class of the site's one learner of the provider's time, wherever it lives.
        from flows.services import upstream_latency

        type(upstream_latency).imitate = _pause_then_stand_in
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        # Lets the bench make sure this server runs the earlier decoy.
        response["X-Bench-Decoy-Pause"] = "before"
        return response
