"""gunicorn settings for production: `gunicorn passwordless.wsgi` reads this file.

`make serve` runs it on the current .env. Every value comes from the
environment (and `.env`, read the way passwordless/settings.py reads it), and
gunicorn's own flags (--workers, --bind…) still win over this file:

  PORT              port to listen on (default 8000)
  BIND_HOST         address to listen on (default 127.0.0.1: behind nginx on this
                    machine; 0.0.0.0 when the load balancer is elsewhere)
  WEB_CONCURRENCY   worker processes (default 2 * cores + 1)
  GUNICORN_THREADS  threads per worker (default 8)
  GUNICORN_TIMEOUT  seconds before a silent worker is restarted (default: above
                    three calls to Vonage, i.e. 3 * VONAGE_TIMEOUT + 10, at least 30)
  LOG_FORMAT        json (default with DEBUG off) or plain, as for the site
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import environ

from passwordless.logging import FORMATTERS as LOG_FORMATTERS

BASE_DIR = Path(__file__).resolve().parent
env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

wsgi_app = "passwordless.wsgi:application"
bind = [f"{env.str('BIND_HOST', default='127.0.0.1')}:{env.int('PORT', default=8000)}"]

# Processes for the cores (the CPU work of a request holds the GIL), threads
# within each for the waiting: a request that waits on Vonage holds a thread,
# not a whole worker, so the other threads keep serving other visitors.
cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
workers = env.int("WEB_CONCURRENCY", default=2 * (cores or 1) + 1)
worker_class = "gthread"
threads = env.int("GUNICORN_THREADS", default=8)
# A gthread worker accepts connections while it has fewer than
# worker_connections, and queues them behind its busy threads: with the
# default (1000), a visitor's request could wait behind several slow calls to
# Vonage in one worker while another worker sits idle. With one connection per
# thread, a worker whose threads are all busy stops accepting, and the next
# connection goes to a worker that can answer it now. That leaves no room for
# idle kept-alive connections, so keep-alive is off: nginx talks to upstreams
# one request per connection by default anyway.
worker_connections = threads
keepalive = 0

# A resend cancels then starts (two calls), each bounded by VONAGE_TIMEOUT:
# the worker must outlive the slowest legitimate request, or gunicorn kills it
# mid-call and the person gets a 502 instead of "temporarily unavailable".
_vonage_timeout = env.float("VONAGE_TIMEOUT", default=10.0)
timeout = env.int("GUNICORN_TIMEOUT", default=max(30, math.ceil(3 * _vonage_timeout) + 10))
graceful_timeout = timeout
# Restart each worker after a while, with jitter so they do not all restart at
# once: memory that grows slowly (caches, fragmentation) is given back.
max_requests = env.int("GUNICORN_MAX_REQUESTS", default=2000)
max_requests_jitter = max_requests // 10
# The heartbeat file on a RAM disk where there is one (containers' /tmp may be
# on overlayfs, whose writes can stall a worker's heartbeat).
if Path("/dev/shm").is_dir():  # noqa: S108
    worker_tmp_dir = "/dev/shm"  # noqa: S108

# No runtime control socket (gunicornc): nothing here uses it, and its one
# default path per user would clash between several servers on one machine.
control_socket_disable = True

# Logs: both gunicorn's and the site's to stderr, one line per event, like
# every command of the site (stdout is for what a command prints). The access
# line carries no query string (%(U)s is the path only) and no cookies.
accesslog = "-"
access_log_format = (
    'remote=%(h)s method=%(m)s path="%(U)s" status=%(s)s bytes=%(B)s duration_ms=%(M)s '
    'user_agent="%(a)s"'
)
_debug = env.bool("DEBUG", default=True)
_log_format = env.str("LOG_FORMAT", default="plain" if _debug else "json")
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": LOG_FORMATTERS,
    # A load balancer's /healthz probes, every few seconds, stay out of the access log.
    "filters": {"health": {"()": "passwordless.logging.SkipPath", "path": "/healthz"}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": _log_format if _log_format in {"json", "plain"} else "plain",
            "stream": "ext://sys.stderr",
        },
    },
    "root": {"level": "INFO", "handlers": []},
    "loggers": {
        # propagate off: Django's LOGGING gives the root logger its own handler
        # in each worker, and a line must not come out twice.
        "gunicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
        "gunicorn.access": {
            "level": "INFO",
            "handlers": ["stderr"],
            "propagate": False,
            "filters": ["health"],
        },
    },
}


def when_ready(server):
    """Say loudly when the development default (DEBUG on) is what is being served."""
    if _debug:
        server.log.warning(
            "DEBUG is on: error pages show settings and code. This is the development "
            "default; set DEBUG=false (with SECRET_KEY, ALLOWED_HOSTS and a Redis CACHE_URL) "
            "for production."
        )
