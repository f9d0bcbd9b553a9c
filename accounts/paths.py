"""The paths of named pages, reversed once rather than on every use.

reverse() costs 20 to 35 µs a call here (measured in process); a login's pages
and redirects name about twenty URLs, all without arguments, whose paths are
the same on every request that shares the URLconf, the script prefix and the
current application.
"""

from __future__ import annotations

import functools

from django.urls import get_resolver, get_script_prefix, get_urlconf, reverse


def cached_reverse(view_name: str, request=None, current_app: str | None = None) -> str:
    """Return reverse(view_name, current_app=current_app), for a URL name without arguments.

    With `request`, its URLconf and script prefix are read once per request.
    """
    return _reverse(view_name, *_url_scope(request), current_app)


def _url_scope(request):
    # Both are thread-local lookups (about 10 µs together, more than the rest
    # of a cached reverse) and cannot change while a request is answered.
    if request is None:
        return get_resolver(get_urlconf()), get_script_prefix()
    try:
        return request._cached_reverse_scope
    except AttributeError:
        scope = request._cached_reverse_scope = (get_resolver(get_urlconf()), get_script_prefix())
        return scope


@functools.lru_cache(maxsize=256)
def _reverse(view_name, resolver, script_prefix, current_app):
    # The resolver is part of the key, not only its URLconf's name:
    # clear_url_caches() (ROOT_URLCONF overridden in a test) builds a new one.
    # reverse() reads the script prefix itself; it is in the key so that each
    # prefix gets its own entry.
    return reverse(view_name, urlconf=resolver.urlconf_name, current_app=current_app)
