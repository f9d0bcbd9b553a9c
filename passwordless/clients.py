"""Who sent a request: the client's address, behind the site's own proxies.

Read by the rate limits (flows.limits) and the verification log
(verificationlog.events); set TRUSTED_PROXY_COUNT to the number of proxies
in front of the site.
"""

from __future__ import annotations

import ipaddress
import logging

from django.conf import settings

logger = logging.getLogger(__name__)

# A proxy count the requests contradict is a setting to fix, not an event:
# said once per process (the first such request), not once per request.
_proxy_count_warned = False


def client_ip(request) -> str:
    """Return the address of the client that sent `request`.

    With TRUSTED_PROXY_COUNT = 0 (the default) that is REMOTE_ADDR: the
    X-Forwarded-For header is written by the client and would let anyone pick
    a fresh address for every request. Behind N proxies of ours, each appends
    the address it got the request from, so the Nth entry from the right is
    the one the first proxy saw, and everything left of it may be forged. A
    request with fewer entries did not come through every proxy, and one whose
    entry is not an IP address is malformed: both count against REMOTE_ADDR.
    """
    # Read by the limits and the log several times a request: worked out once.
    try:
        return request._client_ip
    except AttributeError:
        request._client_ip = address = _client_ip(request)
        return address


def _client_ip(request) -> str:
    remote_addr = request.META.get("REMOTE_ADDR") or "unknown"
    proxies = getattr(settings, "TRUSTED_PROXY_COUNT", 0)
    if proxies <= 0:
        return remote_addr
    header = request.META.get("HTTP_X_FORWARDED_FOR", "")
    forwarded = [entry.strip() for entry in header.split(",")] if header else []
    if len(forwarded) < proxies:
        global _proxy_count_warned
        if not _proxy_count_warned:
            _proxy_count_warned = True
            logger.warning(
                "TRUSTED_PROXY_COUNT=%d, but a request from %s came with %d X-Forwarded-For "
                "entries: it did not come through that many proxies, so limits count it "
                "against REMOTE_ADDR. Set TRUSTED_PROXY_COUNT to the number of proxies in "
                "front of the site (0 for none). Logged once per process.",
                proxies,
                remote_addr,
                len(forwarded),
            )
        return remote_addr
    try:
        return str(ipaddress.ip_address(forwarded[-proxies]))
    except ValueError:
        return remote_addr
