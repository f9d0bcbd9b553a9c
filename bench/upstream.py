"""A slow Vonage: the tests' HTTPS emulator (tests/emulator), answering after a delay.

Run as its own process (`python -m bench.upstream --delay 0.5 --ca CA --info FILE`)
so that its threads do not share a GIL with the bench's clients. It writes
what the site needs to reach it (host, key, secret) as JSON to FILE, then
serves until it is terminated.
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
import time
from pathlib import Path

from tests.emulator import server
from tests.emulator.server import VonageEmulator

# The tests' emulator listens with http.server's backlog of 5: enough for a
# test, not for 20 clients calling at once (the kernel drops the extra
# connection attempts and the SDK retries them a second or more later).
server._Server.request_queue_size = 256


class SlowVonageEmulator(VonageEmulator):
    """Every answer comes `delay` seconds late, like a far or busy provider."""

    delay = 0.5

    def dispatch(self, method, target, headers, body):
        # Outside the emulator's lock: the waits of concurrent calls overlap,
        # as they would at Vonage.
        time.sleep(self.delay)
        return super().dispatch(method, target, headers, body)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--delay", type=float, default=0.5)
    parser.add_argument("--ca", type=Path, required=True)
    parser.add_argument("--info", type=Path, required=True)
    arguments = parser.parse_args()
    SlowVonageEmulator.delay = arguments.delay
    emulator = SlowVonageEmulator(ca_bundle=arguments.ca)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    info = {"host": emulator.host, "key": emulator.api_key, "secret": emulator.api_secret}
    partial = arguments.info.with_suffix(".tmp")
    partial.write_text(json.dumps(info))
    partial.rename(arguments.info)
    # Bounded: the bench stops it within minutes; an orphan stops after an hour.
    stopped.wait(timeout=3600)
    emulator.close()


if __name__ == "__main__":
    main()
