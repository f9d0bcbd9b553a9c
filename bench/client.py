"""A browser's side of a login: cookies, CSRF tokens, codes read from the server's output."""

from __future__ import annotations

import html
import http.client
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path

CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="(?P<token>[^"]+)"')
CODE_LINE = re.compile(r"\[(?:sms|voice) to (?P<to>[^\]]+)\][^\n]*?code: (?P<code>[A-Za-z0-9-]+)")


def number_key(text: str) -> str:
    """Key a number by what a masked one still shows: country and area digits, last two.

    "+14155550123" and "+1 415 ••• ••23" both give "1415-23".
    """
    digits = re.sub(r"\D", "", text)
    return f"{digits[:4]}-{digits[-2:]}"


class CodeReader:
    """Follow a server's output file and hand out the codes printed in it, by number."""

    def __init__(self, path: Path):
        self.path = path
        self._codes: dict[str, list[str]] = {}
        self._condition = threading.Condition()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        with self.path.open("r", encoding="utf-8", errors="replace") as stream:
            pending = ""
            while not self._stopped.is_set():
                chunk = stream.read()
                if not chunk:
                    time.sleep(0.002)
                    continue
                pending += chunk
                lines, _, pending = pending.rpartition("\n")
                found = [(number_key(m["to"]), m["code"]) for m in CODE_LINE.finditer(lines)]
                if found:
                    with self._condition:
                        for key, code in found:
                            self._codes.setdefault(key, []).append(code)
                        self._condition.notify_all()

    def sent(self, number: str) -> int:
        """Return how many codes were printed for `number` so far."""
        with self._condition:
            return len(self._codes.get(number_key(number), ()))

    def code(self, number: str, *, after: int, timeout: float = 10) -> str:
        """Return the first code printed for `number` after the `after`-th one."""
        key = number_key(number)
        deadline = time.monotonic() + timeout
        with self._condition:
            while len(self._codes.get(key, ())) <= after:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no code for {number} in {self.path}")
                self._condition.wait(left)
            return self._codes[key][after]

    def close(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=2)


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    text: str
    seconds: float

    @property
    def location(self) -> str | None:
        return self.headers.get("Location")

    @property
    def queries(self) -> int | None:
        value = self.headers.get("X-Bench-Queries")
        return int(value) if value is not None else None

    @property
    def cpu_us(self) -> int | None:
        value = self.headers.get("X-Bench-CPU-us")
        return int(value) if value is not None else None


@dataclass
class Browser:
    """One person's browser behind the site's HTTPS proxy (X-Forwarded-* headers)."""

    port: int
    address: str
    cookies: dict[str, str] = field(default_factory=dict)
    timeout: float = 30

    def __post_init__(self):
        self._connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        self.origin = f"https://127.0.0.1:{self.port}"

    def request(self, method: str, path: str, form: dict | None = None) -> Response:
        headers = {
            "X-Forwarded-For": self.address,
            "X-Forwarded-Proto": "https",
            "Accept-Encoding": "identity",
        }
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Origin"] = self.origin
        started = time.perf_counter()
        try:
            self._connection.request(method, path, body=body, headers=headers)
            response = self._connection.getresponse()
            text = response.read().decode()
        except (http.client.HTTPException, OSError):
            # A kept-alive connection the server closed meanwhile: once more, afresh.
            self._connection.close()
            started = time.perf_counter()
            self._connection.request(method, path, body=body, headers=headers)
            response = self._connection.getresponse()
            text = response.read().decode()
        seconds = time.perf_counter() - started
        if response.getheader("Connection", "").lower() == "close":
            self._connection.close()
        for header in response.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(header).items():
                if morsel["max-age"] == "0" or not morsel.value:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        return Response(response.status, response.headers, text, seconds)

    def get(self, path: str) -> Response:
        return self.request("GET", path)

    def post(self, path: str, page: Response, data: dict) -> Response:
        """POST `data` to `path` with the CSRF token of the form on `page`."""
        match = CSRF_FIELD.search(page.text)
        if not match:
            raise AssertionError(
                f"no CSRF token in the page before POST {path}: {page.status} {page.location}"
                f" {page.text[:300]!r}"
            )
        return self.request(
            "POST", path, {"csrfmiddlewaretoken": html.unescape(match["token"]), **data}
        )

    def close(self) -> None:
        self._connection.close()
