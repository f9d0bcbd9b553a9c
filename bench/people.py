"""`make bench-people`: a hundred people log in the way people do; what it costs (issue 15).

People double-click, press the back button, open two tabs, ask for another
code when the first is slow, mistype, and walk away. Each of them costs SMS
and calls, and a login that goes wrong can leave someone unable to get in.
This runs such a population against Verify v2 with the site's default
settings (VERIFY_WORKFLOW=sms,voice, no automatic voice fallback), and counts
the codes sent (SMS and voice calls, the ones Vonage would place by itself
included) per successful login, and the people stranded: those who wanted to
log in, typed the code they received, and still could not.

Everything is real and in one process: the site through Django's test client
(CSRF checks on, a SQLite file and the database cache, as the embedded
default), the vonage backend through the real SDK over HTTPS to the tests'
emulator (tests/emulator), which answers each call after UPSTREAM_DELAY, as a
real provider takes a moment (a double click's second POST arrives while the
first waits on it). People arrive over an hour, at random moments from a
fixed seed; their waits (reading the SMS, coming back later) move the clock
with time-machine, for the site and the emulator alike, so the cooldown, the
code's lifetime, the rate limits and Vonage's own timers all run as they
would. Where the site has `manage.py verification sweep` (cancels upstream
the requests whose code died unused), cron runs it every minute, as a
deployment does; --no-cron leaves it out. At the end the clock moves past
Vonage's channel timeouts, to see which requests would still ring a phone by
themselves.

A measurement, not a test: it prints Markdown tables and never fails on a
missed target. `python -m bench.people [--seed N] [--people N]`; extra
settings come from the environment (e.g. VERIFY_VOICE_FALLBACK_AFTER=120).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import heapq
import html
import logging
import os
import random
import re
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

SEED = 15
PEOPLE = 100
ARRIVALS_OVER = 3600  # seconds: people arrive at random moments within this hour
UPSTREAM_DELAY = 0.2  # seconds the emulator takes to answer, as Vonage does
AFTER_THE_END = 2 * 900 + 60  # past both of Vonage's channel timeouts
CRON_EVERY = 60  # seconds between two runs of `manage.py verification sweep`, when there is one
RETRIES = 2  # a person who is not in starts again this many times before giving up
START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)

CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="(?P<token>[^"]+)"')
MESSAGE = re.compile(r'<li class="message message-[\w-]+">(?P<text>.*?)</li>', re.S)


# The people ------------------------------------------------------------------------


@dataclass(frozen=True)
class Behaviour:
    """What one kind of person does, and how many of the hundred do it."""

    name: str
    share: int  # people out of 100
    does: str
    asks_again: bool  # asks for another code: a new SMS or a call
    wants_in: bool  # means to log in (types the code they get)
    act: Callable[[Person, Site], Iterator[float]]


def straight(person: Person, site: Site) -> Iterator[float]:
    page = person.browser.open("/login/")
    yield person.rng.uniform(5, 20)  # typing the number
    person.post_number(page)
    yield person.rng.uniform(10, 40)  # the SMS arrives, they read it
    person.type_code(site.code_for(person))


def double_click(person: Person, site: Site) -> Iterator[float]:
    page = person.browser.open("/login/")
    yield person.rng.uniform(5, 20)
    # Two POSTs with the same cookies and none of the session yet: the browser
    # throws the first answer away and shows the second.
    thrown_away = person.browser.copy()
    gap = person.rng.uniform(0.05, 0.15)
    pages, moments = {}, {}

    def click(browser: Browser, key: str, delay: float) -> None:
        from django.db import connections

        time.sleep(delay)
        moments[key] = [time.monotonic()]
        try:
            pages[key] = person.post_number(page, browser=browser)
        except Exception as exc:  # a crash is a finding: kept and reported
            pages[key] = exc
        finally:
            moments[key].append(time.monotonic())
            connections.close_all()

    clicks = [
        threading.Thread(target=click, args=(thrown_away, "first", 0.0)),
        threading.Thread(target=click, args=(person.browser, "second", gap)),
    ]
    for thread in clicks:
        thread.start()
    for thread in clicks:
        thread.join(timeout=60)
    if isinstance(pages.get("second"), Exception):
        raise pages["second"]
    # Did the second POST reach the site while the first still waited on Vonage?
    person.overlapped = moments["second"][0] < moments["first"][1]
    yield person.rng.uniform(10, 40)
    person.type_code(site.code_for(person))


def back_button(person: Person, site: Site) -> Iterator[float]:
    page = person.browser.open("/login/")
    yield person.rng.uniform(5, 20)
    person.post_number(page)
    yield person.rng.uniform(3, 30)
    # Back to the login page, and the number sent again from it.
    page = person.browser.open("/login/")
    yield person.rng.uniform(2, 10)
    person.post_number(page)
    yield person.rng.uniform(10, 40)
    person.type_code(site.code_for(person))


def two_tabs(person: Person, site: Site) -> Iterator[float]:
    first = person.browser.open("/login/")
    second = person.browser.open("/login/")  # the same browser: the same cookies
    yield person.rng.uniform(5, 20)
    person.post_number(first)
    yield person.rng.uniform(5, 40)
    person.post_number(second)
    yield person.rng.uniform(10, 40)
    # The code typed in either tab.
    person.type_code(site.code_for(person))


def typo(person: Person, site: Site) -> Iterator[float]:
    page = person.browser.open("/login/")
    yield person.rng.uniform(5, 20)
    person.post_number(page)
    yield person.rng.uniform(10, 40)
    code = site.code_for(person)
    person.type_code(mistyped(code, person.rng))
    yield person.rng.uniform(3, 15)
    person.type_code(site.code_for(person))


def impatient(action: str) -> Callable[[Person, Site], Iterator[float]]:
    """Ask for a new code or a call once the cooldown allows it, then type what arrives."""

    def act(person: Person, site: Site) -> Iterator[float]:
        page = person.browser.open("/login/")
        yield person.rng.uniform(5, 20)
        person.post_number(page)
        # The button is there once the cooldown (VERIFY_RESEND_COOLDOWN) is over.
        yield site.cooldown + person.rng.uniform(1, 60)
        person.ask(action)
        yield person.rng.uniform(10, 40)
        person.type_code(site.code_for(person))

    return act


def walks_away(person: Person, site: Site) -> Iterator[float]:
    page = person.browser.open("/login/")
    yield person.rng.uniform(5, 20)
    person.post_number(page)


def comes_back(person: Person, site: Site) -> Iterator[float]:
    page = person.browser.open("/login/")
    yield person.rng.uniform(5, 20)
    person.post_number(page)
    # Called away; back once the code has expired on the site
    # (VERIFY_CODE_TTL), before Vonage gives up on the request.
    yield site.code_ttl + person.rng.uniform(30, 540)
    page = person.browser.open("/login/")
    yield person.rng.uniform(3, 10)
    person.post_number(page)
    yield person.rng.uniform(10, 40)
    person.type_code(site.code_for(person))


MIX = (
    Behaviour("straight", 38, "types the number once, then the code", False, True, straight),
    Behaviour(
        "double click",
        12,
        "sends the number twice in two cookie-less sessions; keeps the second answer",
        False,
        True,
        double_click,
    ),
    Behaviour(
        "back button",
        8,
        "back to the login page, sends the number again, then types the code",
        False,
        True,
        back_button,
    ),
    Behaviour(
        "two tabs",
        8,
        "sends the number from two tabs (same cookies), types the code in one",
        False,
        True,
        two_tabs,
    ),
    Behaviour("typo", 10, "types one wrong code, then the right one", False, True, typo),
    Behaviour(
        "impatient, new code",
        6,
        "asks for “Send a new code” after the cooldown, types the new code",
        True,
        True,
        impatient("resend"),
    ),
    Behaviour(
        "impatient, call",
        6,
        "asks for “Call me instead” after the cooldown, types the code heard",
        True,
        True,
        impatient("call"),
    ),
    Behaviour("walks away", 8, "sends the number, never types the code", False, False, walks_away),
    Behaviour(
        "comes back",
        4,
        "sends the number, is called away, comes back after the code expired on the site "
        "and sends the number again",
        True,
        True,
        comes_back,
    ),
)


def mistyped(code: str, rng: random.Random) -> str:
    """Return `code` with one digit changed, as a thumb does it."""
    position = rng.randrange(len(code))
    digit = str((int(code[position]) + rng.randrange(1, 10)) % 10)
    return code[:position] + digit + code[position + 1 :]


# A browser and a person -------------------------------------------------------------


@dataclass
class Page:
    path: str
    status: int
    text: str

    @property
    def messages(self) -> list[str]:
        return [
            html.unescape(re.sub(r"\s+", " ", m["text"])).strip()
            for m in MESSAGE.finditer(self.text)
        ]

    @property
    def token(self) -> str:
        match = CSRF_FIELD.search(self.text)
        if not match:
            raise RuntimeError(f"no form on {self.path} (HTTP {self.status})")
        return html.unescape(match["token"])


class Browser:
    """One browser (or tab set): cookies, CSRF checks, redirects followed."""

    def __init__(self, address: str):
        from django.test import Client

        self.address = address
        self.client = Client(enforce_csrf_checks=True, REMOTE_ADDR=address)

    def copy(self) -> Browser:
        """Return a browser holding the same cookies as this one now."""
        other = Browser(self.address)
        for name, morsel in self.client.cookies.items():
            other.client.cookies[name] = morsel.value
        return other

    def _page(self, response) -> Page:
        path = response.request["PATH_INFO"]
        return Page(path, response.status_code, response.content.decode())

    def open(self, path: str) -> Page:
        return self._page(self.client.get(path, follow=True))

    def submit(self, page: Page, action: str, data: dict) -> Page:
        """Send a form of `page` to `action` with its CSRF token; the page that ends up shown."""
        form = {"csrfmiddlewaretoken": page.token, **data}
        return self._page(self.client.post(action, form, follow=True))

    @property
    def logged_in(self) -> bool:
        from django.contrib.auth import SESSION_KEY

        return SESSION_KEY in self.client.session


@dataclass
class Person:
    index: int
    behaviour: Behaviour
    number: str
    rng: random.Random
    browser: Browser
    seen: list[str] = field(default_factory=list)
    typed: int = 0  # codes typed
    asked: Counter = field(default_factory=Counter)  # "resend", "call": granted
    starts: int = 0  # times the number was sent
    retries: int = 0  # times they started again, not in after their attempt
    crash: str = ""
    logged_in: bool = False
    overlapped: bool = False  # a double click whose two POSTs were in the site together

    def note(self, page: Page) -> Page:
        for text in page.messages:
            self.seen.append(f"{page.path}: {text}")
        if page.status >= 400:
            self.seen.append(f"{page.path}: HTTP {page.status}")
        self.logged_in = self.logged_in or self.browser.logged_in
        return page

    def post_number(self, page: Page, *, browser: Browser | None = None) -> Page:
        self.starts += 1
        browser = browser or self.browser
        shown = browser.submit(page, "/login/", {"number": spaced(self.number)})
        if browser is self.browser:
            self.note(shown)
        return shown

    def type_code(self, code: str | None) -> None:
        if code is None:
            self.seen.append("(no code arrived)")
            return
        page = self.note(self.browser.open("/verify/"))
        if page.path != "/verify/":
            return  # sent elsewhere (the login page): nothing to type the code into
        self.typed += 1
        self.note(self.browser.submit(page, "/verify/", {"code": code}))

    def ask(self, action: str) -> None:
        page = self.note(self.browser.open("/verify/"))
        if page.path != "/verify/":
            return
        shown = self.note(self.browser.submit(page, f"/verify/{action}/", {}))
        granted = {"resend": "A new code is on its way", "call": "We are calling"}[action]
        if any(text.startswith(granted) for text in shown.messages):
            self.asked[action] += 1


def spaced(number: str) -> str:
    """Write +12125550142 as a person types it: +1 212 555 0142."""
    return f"{number[:2]} {number[2:5]} {number[5:8]} {number[8:]}"


def numbers_in_ranges(count: int, rng: random.Random) -> list[str]:
    """Return fictional +1 NPA 555 01XX numbers, each in a range (area code) of its own.

    The site limits sends per range (VERIFY_PREFIX_RATE); people of one
    small town in one hour would meet that limit, which is not what this
    measures.
    """
    import phonenumbers

    from flows.defences import number_refusal

    found = []
    for area in rng.sample(range(201, 990), 789):
        number = f"+1{area}55501{rng.randrange(100):02d}"
        parsed = phonenumbers.parse(number)
        if phonenumbers.is_valid_number(parsed) and number_refusal(number) is None:
            found.append(number)
            if len(found) == count:
                return found
    raise RuntimeError("not enough valid number ranges")


# The site, the provider and the clock --------------------------------------------------


class Site:
    """The emulator, the site's settings that shape the people's waits, and the clock."""

    def __init__(self, emulator, traveller, *, sweeps: bool):
        from django.conf import settings

        self.emulator = emulator
        self.traveller = traveller
        self.cooldown = settings.VERIFY_RESEND_COOLDOWN
        self.code_ttl = settings.VERIFY_CODE_TTL
        self.sweeps = sweeps
        self.sweep_runs = self.sweep_failures = 0
        self.started = time.time()

    def cron(self) -> Iterator[float]:
        """Run the sweep every CRON_EVERY seconds, as README's deployment has cron do."""
        while True:
            self.sweep()
            yield CRON_EVERY

    def sweep(self) -> None:
        from django.core.management import CommandError, call_command

        self.sweep_runs += 1
        try:
            call_command("verification", "sweep", verbosity=0)
        except CommandError:
            self.sweep_failures += 1

    def now(self) -> float:
        return time.time() - self.started

    def move_to(self, at: float) -> None:
        ahead = at - self.now()
        if ahead > 0:
            self.traveller.shift(ahead)

    def code_for(self, person: Person) -> str | None:
        """Return the code the person's phone received last (SMS or call), if any."""
        sent = [m for m in self.emulator.messages if m.number == person.number]
        return sent[-1].code if sent else None


def run(people: list[Person], site: Site, arrivals: list[float]) -> None:
    """Play every person's steps in the order of their moments, and cron's every minute."""
    queue = []
    for person, at in zip(people, arrivals, strict=True):
        heapq.heappush(queue, (at, person.index, person.behaviour.act(person, site)))
    if site.sweeps:
        heapq.heappush(queue, (CRON_EVERY, -1, site.cron()))
    busy = len(people)
    while busy:
        at, index, steps = heapq.heappop(queue)
        site.move_to(at)
        try:
            wait = next(steps)
        except StopIteration:
            busy -= 1
            continue
        except Exception as exc:  # an HTTP 500 through the test client: a finding
            people[index].crash = f"{type(exc).__name__}: {exc}"[:300]
            busy -= 1
            continue
        heapq.heappush(queue, (at + wait, index, steps))
    # Then nobody: the clock runs on past Vonage's timers, cron with it.
    end = site.now() + AFTER_THE_END
    while site.sweeps and site.now() + CRON_EVERY < end:
        site.move_to(site.now() + CRON_EVERY)
        site.sweep()
    site.move_to(end)


def sweep_available() -> bool:
    """Tell whether `manage.py verification sweep` exists (cancels abandoned requests)."""
    from django.core.management import CommandError, load_command_class

    command = load_command_class("flows", "verification")
    try:
        command.create_parser("manage.py", "verification").parse_args(["sweep"])
    except (CommandError, SystemExit):
        return False
    return True


def retry_until_in(person: Person, site: Site) -> Iterator[float]:
    """Start again, as a person who is still not in does, at most RETRIES times."""
    for _ in range(RETRIES):
        if person.logged_in or person.crash:
            return
        yield person.rng.uniform(60, 180)
        person.retries += 1
        page = person.browser.open("/login/")
        yield person.rng.uniform(3, 10)
        person.post_number(page)
        yield person.rng.uniform(10, 40)
        person.type_code(site.code_for(person))


def with_retries(behaviour: Behaviour) -> Callable[[Person, Site], Iterator[float]]:
    def act(person: Person, site: Site) -> Iterator[float]:
        yield from behaviour.act(person, site)
        if behaviour.wants_in:
            yield from retry_until_in(person, site)

    return act


# Setting up ----------------------------------------------------------------------------


def configure(tmp: Path) -> object:
    """Start the emulator and set up Django on the default settings, Verify v2 against it."""
    from bench.upstream import SlowVonageEmulator

    SlowVonageEmulator.delay = UPSTREAM_DELAY
    # The emulator reads the clock through time.time(), which time-machine moves.
    emulator = SlowVonageEmulator(ca_bundle=tmp / "ca.pem", clock=lambda: time.time())
    for name in ("CACHE_URL", "SESSION_ENGINE", "VERIFY_VOICE_FALLBACK_AFTER"):
        if name in os.environ:
            print(f"bench-people: {name}={os.environ[name]} from the environment", file=sys.stderr)
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "passwordless.settings",
            "DATABASE_URL": f"sqlite:///{tmp / 'people.sqlite3'}",
            "VERIFY_BACKEND": "vonage",
            "VONAGE_API_HOST": emulator.host,
            "VONAGE_API_KEY": emulator.api_key,
            "VONAGE_API_SECRET": emulator.api_secret,
            "VONAGE_APPLICATION_ID": "",
            "VONAGE_PRIVATE_KEY": "",
            "VONAGE_TIMEOUT": "5",
            "REQUESTS_CA_BUNDLE": str(emulator.ca_bundle),
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            "LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING"),
        }
    )
    import django

    django.setup()
    # The SDK logs every 4xx at WARNING; the typos here make some on purpose.
    logging.getLogger("vonage").setLevel(logging.ERROR)
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    call_command("createcachetable", verbosity=0)
    return emulator


def people_of(mix: tuple[Behaviour, ...], count: int, rng: random.Random) -> list[Behaviour]:
    """Return `count` behaviours in the proportions of `mix` (largest remainders), shuffled."""
    total = sum(behaviour.share for behaviour in mix)
    exact = [behaviour.share * count / total for behaviour in mix]
    sizes = [int(share) for share in exact]
    by_remainder = sorted(range(len(mix)), key=lambda i: sizes[i] - exact[i])
    for i in by_remainder[: count - sum(sizes)]:
        sizes[i] += 1
    chosen = [behaviour for behaviour, size in zip(mix, sizes, strict=True) for _ in range(size)]
    rng.shuffle(chosen)
    return chosen


# The report ----------------------------------------------------------------------------


@dataclass
class Tally:
    people: int = 0
    logged_in: int = 0
    started_again: int = 0
    stranded: int = 0
    sms: int = 0
    calls_asked: int = 0
    calls_by_vonage: int = 0
    sms_after: int = 0

    def add(self, person: Person, sent: Counter) -> None:
        self.people += 1
        self.logged_in += person.logged_in
        self.started_again += person.retries > 0
        self.stranded += is_stranded(person)
        self.sms += sent["sms"]
        asked = min(person.asked["call"], sent["voice"])
        self.calls_asked += asked
        self.calls_by_vonage += sent["voice"] - asked

    @property
    def codes(self) -> int:
        return self.sms + self.calls_asked + self.calls_by_vonage

    def per_login(self, codes: int) -> str:
        return f"{codes / self.logged_in:.2f}" if self.logged_in else "n/a"

    def row(self, name: str) -> str:
        return (
            f"| {name} | {self.people} | {self.logged_in} | {self.started_again} "
            f"| {self.stranded} | {self.sms} "
            f"| {self.calls_asked} | {self.calls_by_vonage} "
            f"| {self.per_login(self.codes - self.calls_by_vonage)} "
            f"| **{self.per_login(self.codes)}** |"
        )


def is_stranded(person: Person) -> bool:
    return person.behaviour.wants_in and not person.logged_in


def report(people, messages_by_number, arguments, settings, site: Site) -> str:
    if site.sweeps:
        cron = (
            f"Cron runs `manage.py verification sweep` every {CRON_EVERY} s "
            f"({site.sweep_runs} runs, {site.sweep_failures} failed)."
        )
    elif arguments.cron:
        cron = "No cron: this version has no `manage.py verification sweep`."
    else:
        cron = "No cron (--no-cron)."
    lines = [
        "### A hundred people logging in",
        "",
        f"{len(people)} people, seed {arguments.seed}, arriving over "
        f"{ARRIVALS_OVER // 60} minutes; Verify v2 (VERIFY_WORKFLOW="
        f"{','.join(settings.VERIFY_WORKFLOW)}, VERIFY_VOICE_FALLBACK_AFTER="
        f"{settings.VERIFY_VOICE_FALLBACK_AFTER or 0}, VERIFY_RESEND_COOLDOWN="
        f"{settings.VERIFY_RESEND_COOLDOWN} s, VERIFY_CODE_TTL={settings.VERIFY_CODE_TTL} s) "
        f"against the emulator answering after {UPSTREAM_DELAY * 1000:.0f} ms; the embedded "
        "default (SQLite, database cache), Django's test client with CSRF checks. A person "
        f"who is not in after their attempt starts again, up to {RETRIES} times. {cron}",
        "",
        "| behaviour | people | what they do | asks for another code | means to log in |",
        "|---|---:|---|---|---|",
    ]
    counts = Counter(person.behaviour.name for person in people)
    for behaviour in MIX:
        lines.append(
            f"| {behaviour.name} | {counts[behaviour.name]} | {behaviour.does} "
            f"| {'yes' if behaviour.asks_again else 'no'} "
            f"| {'yes' if behaviour.wants_in else 'no'} |"
        )
    by_behaviour = {behaviour.name: Tally() for behaviour in MIX}
    groups = {
        "did not ask for another code, meant to log in": Tally(),
        "asked for another code": Tally(),
        "walked away": Tally(),
        "everyone": Tally(),
    }
    for person in people:
        sent = Counter(m.channel for m in messages_by_number.get(person.number, ()))
        by_behaviour[person.behaviour.name].add(person, sent)
        groups["everyone"].add(person, sent)
        if not person.behaviour.wants_in:
            groups["walked away"].add(person, sent)
        elif person.behaviour.asks_again:
            groups["asked for another code"].add(person, sent)
        else:
            groups["did not ask for another code, meant to log in"].add(person, sent)
    header = [
        "| {} | people | logged in | had to start again | stranded | SMS | calls asked for "
        "| calls Vonage placed by itself | codes per login, without those | codes per login |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += ["", header[0].format("behaviour"), header[1]]
    lines += [tally.row(name) for name, tally in by_behaviour.items() if tally.people]
    lines += ["", header[0].format("group"), header[1]]
    lines += [tally.row(name) for name, tally in groups.items()]
    calm = groups["did not ask for another code, meant to log in"]
    ratio = calm.codes / calm.logged_in if calm.logged_in else float("inf")
    stranded = [person for person in people if is_stranded(person)]
    crashed = [person for person in people if person.crash]
    again = [person for person in people if person.retries and not is_stranded(person)]
    clicks = [person for person in people if person.behaviour.name == "double click"]
    lines += [
        "",
        f"Double clicks whose second POST reached the site while the first was still "
        f"under way: {sum(person.overlapped for person in clicks)} of {len(clicks)}.",
    ]
    lines += [
        "",
        "Codes are the SMS and calls the emulator delivered, counted after the clock moved "
        f"{AFTER_THE_END // 60} minutes past the last step (beyond Vonage's channel timeouts), "
        "so the calls Vonage would place by itself are in. Codes per login: a group's codes "
        "divided by its successful logins.",
        "",
        f"Target: ≤ 1.05 codes per successful login for the people who did not ask for another "
        f"code: **{'met' if ratio <= 1.05 else 'missed'}** ({ratio:.2f}). No person stranded: "
        f"**{'met' if not stranded else 'missed'}** ({len(stranded)} stranded). HTTP 500s: "
        f"{len(crashed)}.",
    ]
    if stranded or crashed or again:
        lines += ["", "Stranded, crashed or started again, and what they were shown:", ""]
        for person in stranded + [p for p in crashed + again if p not in stranded]:
            sent = messages_by_number.get(person.number, ())
            seen = list(dict.fromkeys(person.seen))
            lines.append(
                f"- person {person.index} ({person.behaviour.name}), "
                f"{len(sent)} codes received ({', '.join(m.channel for m in sent)}), "
                f"{person.starts} number sends, {person.typed} codes typed, "
                f"started again {person.retries} times"
                + (f", crash: {person.crash}" if person.crash else "")
                + ": "
                + " / ".join(seen)
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--people", type=int, default=PEOPLE)
    parser.add_argument(
        "--no-cron",
        dest="cron",
        action="store_false",
        help="do not run `manage.py verification sweep` every minute, even where it exists",
    )
    arguments = parser.parse_args()
    started = time.monotonic()
    rng = random.Random(arguments.seed)  # noqa: S311 (a seeded simulation, no secret)

    import time_machine

    with (
        tempfile.TemporaryDirectory(prefix="passwordless-people-") as tmp,
        time_machine.travel(START, tick=True) as traveller,
    ):
        emulator = configure(Path(tmp))
        try:
            from django.conf import settings

            sweeps = arguments.cron and sweep_available()
            site = Site(emulator, traveller, sweeps=sweeps)
            behaviours = people_of(MIX, arguments.people, rng)
            numbers = numbers_in_ranges(arguments.people, rng)
            arrivals = sorted(rng.uniform(0, ARRIVALS_OVER) for _ in behaviours)
            people = []
            for index, (behaviour, number) in enumerate(zip(behaviours, numbers, strict=True)):
                person = Person(
                    index=index,
                    behaviour=Behaviour(**{**vars(behaviour), "act": with_retries(behaviour)}),
                    number=number,
                    rng=random.Random(rng.random()),  # noqa: S311 (as above)
                    # TEST-NET-3 (RFC 5737): only ever REMOTE_ADDR, never dialled.
                    browser=Browser(f"203.0.113.{index % 250 + 1}"),
                )
                people.append(person)
            print(f"bench-people: {len(people)} people…", file=sys.stderr)
            run(people, site, arrivals)
            site.move_to(site.now() + AFTER_THE_END)
            messages_by_number = {}
            for message in emulator.messages:
                messages_by_number.setdefault(message.number, []).append(message)
            text = report(people, messages_by_number, arguments, settings, site)
        finally:
            with contextlib.suppress(Exception):
                emulator.close()
    print(text)
    print(f"bench-people: done in {time.monotonic() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
