"""The operators' dashboard: what the verification log says, in numbers and in pictures.

Reads first (`verification_dashboard_get`), then the geometry of the charts,
computed here so that the SVG templates only place shapes and never compute.
Numbers are masked before they leave this module.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, Max, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from accounts.phone import mask_phone_number

from .events import DECOY_DETAIL
from .models import Outcome, VerificationLog

DEFAULT_DAYS = 30
TOP_COUNT = 10
# Attempts that point at someone guessing codes or hammering the site.
FAILED_ATTEMPT_OUTCOMES = (Outcome.WRONG_CODE, Outcome.TOO_MANY_ATTEMPTS, Outcome.RATE_LIMITED)
# The Okabe-Ito palette (distinguishable with the common colour-vision
# deficiencies), plus a wine red, one colour per outcome in Outcome's order.
OUTCOME_COLOURS = {
    Outcome.STARTED: "#0072B2",
    Outcome.SUCCEEDED: "#009E73",
    Outcome.WRONG_CODE: "#E69F00",
    Outcome.EXPIRED: "#999999",
    Outcome.TOO_MANY_ATTEMPTS: "#D55E00",
    Outcome.CANCELLED: "#CC79A7",
    Outcome.RATE_LIMITED: "#F0E442",
    Outcome.REFUSED: "#56B4E9",
    Outcome.UPSTREAM_ERROR: "#882255",
}


# Reads ----------------------------------------------------------------------


@dataclass(frozen=True)
class DayStats:
    """One day of the log: events per outcome and what the provider charged."""

    day: datetime.date
    counts: dict[str, int]
    spend: dict[str, Decimal] = field(default_factory=dict)
    # STARTED events that sent nothing (numbers that cannot log in).
    decoys: int = 0

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def started(self) -> int:
        """Return the codes really sent (started, resent, called), decoys left out."""
        return self.counts.get(Outcome.STARTED, 0) - self.decoys

    @property
    def succeeded(self) -> int:
        return self.counts.get(Outcome.SUCCEEDED, 0)

    @property
    def failed_attempts(self) -> int:
        return sum(self.counts.get(outcome, 0) for outcome in FAILED_ATTEMPT_OUTCOMES)

    @property
    def conversion(self) -> float | None:
        return conversion_rate(self.succeeded, self.started)

    @property
    def codes_per_success(self) -> float | None:
        """Return codes sent per right code: 1.0 when every person needed one code.

        Codes sent are `started`: first codes, resends and the calls people
        asked for (each call is billed and reads a code out), never decoys. The
        calls Vonage places by itself are not in the log, so not here either.
        """
        return codes_per_success(self.started, self.succeeded)

    @property
    def outcome_counts(self) -> list[tuple[str, int]]:
        """Return (label, count) for every outcome, in Outcome's order."""
        return [(outcome.label, self.counts.get(outcome, 0)) for outcome in Outcome]


@dataclass(frozen=True)
class Offender:
    """A number or client with many failed attempts."""

    label: str
    failures: int
    last_seen: datetime.datetime
    # The raw value to filter the changelist by; empty for numbers, which stay
    # out of URLs (and so out of access logs).
    value: str = ""


@dataclass(frozen=True)
class Dashboard:
    """Everything the dashboard page shows."""

    first_day: datetime.date
    last_day: datetime.date
    purpose: str
    days: list[DayStats]
    top_numbers: list[Offender]
    top_ips: list[Offender]

    @property
    def today(self) -> DayStats:
        return self.days[-1]

    @property
    def totals(self) -> DayStats:
        counts: dict[str, int] = {}
        spend: dict[str, Decimal] = {}
        decoys = sum(day.decoys for day in self.days)
        for day in self.days:
            for outcome, count in day.counts.items():
                counts[outcome] = counts.get(outcome, 0) + count
            for currency, amount in day.spend.items():
                spend[currency] = spend.get(currency, Decimal(0)) + amount
        return DayStats(
            day=self.last_day, counts=counts, spend=dict(sorted(spend.items())), decoys=decoys
        )

    @property
    def currencies(self) -> list[str]:
        return sorted({currency for day in self.days for currency in day.spend})

    @property
    def spend_rows(self) -> list[tuple[datetime.date, list[Decimal | None]]]:
        """Return (day, amount per currency in `currencies` order) for every day."""
        currencies = self.currencies
        return [(day.day, [day.spend.get(c) for c in currencies]) for day in self.days]


def conversion_rate(succeeded: int, started: int) -> float | None:
    """Return succeeded / started as a percentage, or None when nothing started."""
    if not started:
        return None
    return 100 * succeeded / started


def codes_per_success(sent: int, succeeded: int) -> float | None:
    """Return sent / succeeded, or None when nothing succeeded."""
    if not succeeded:
        return None
    return sent / succeeded


def verification_dashboard_get(
    *, days: int = DEFAULT_DAYS, purpose: str = "", today: datetime.date | None = None
) -> Dashboard:
    """Return the last `days` days of the log (today included), for one purpose or all."""
    last_day = today or timezone.localdate()
    first_day = last_day - datetime.timedelta(days=days - 1)
    start = timezone.make_aware(datetime.datetime.combine(first_day, datetime.time.min))
    end = timezone.make_aware(
        datetime.datetime.combine(last_day + datetime.timedelta(days=1), datetime.time.min)
    )
    rows = VerificationLog.objects.filter(created_at__gte=start, created_at__lt=end)
    if purpose:
        rows = rows.filter(purpose=purpose)

    counts: dict[datetime.date, dict[str, int]] = {}
    by_day_outcome = (
        rows.annotate(day=TruncDate("created_at"))
        .values("day", "outcome")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in by_day_outcome:
        counts.setdefault(row["day"], {})[row["outcome"]] = row["n"]

    decoys = dict(
        rows.filter(outcome=Outcome.STARTED, detail=DECOY_DETAIL)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("day", "n")
    )

    spend: dict[datetime.date, dict[str, Decimal]] = {}
    by_day_currency = (
        rows.filter(price__isnull=False)
        .annotate(day=TruncDate("created_at"))
        .values("day", "currency")
        .annotate(total=Sum("price"))
        .order_by()
    )
    for row in by_day_currency:
        spend.setdefault(row["day"], {})[row["currency"] or "?"] = row["total"]

    all_days = [first_day + datetime.timedelta(days=n) for n in range(days)]
    return Dashboard(
        first_day=first_day,
        last_day=last_day,
        purpose=purpose,
        days=[
            DayStats(
                day=day,
                counts=counts.get(day, {}),
                spend=dict(sorted(spend.get(day, {}).items())),
                decoys=decoys.get(day, 0),
            )
            for day in all_days
        ],
        top_numbers=[
            Offender(
                label=mask_phone_number(row["number"]),
                failures=row["failures"],
                last_seen=row["last_seen"],
            )
            for row in _top_failures(rows.exclude(number=""), "number")
        ],
        top_ips=[
            Offender(
                label=row["ip"],
                value=row["ip"],
                failures=row["failures"],
                last_seen=row["last_seen"],
            )
            for row in _top_failures(rows.filter(ip__isnull=False), "ip")
        ],
    )


def _top_failures(rows: QuerySet[VerificationLog], key: str) -> QuerySet:
    return (
        rows.filter(outcome__in=FAILED_ATTEMPT_OUTCOMES)
        .values(key)
        .annotate(failures=Count("id"), last_seen=Max("created_at"))
        .order_by("-failures", "-last_seen")[:TOP_COUNT]
    )


# Pictures -------------------------------------------------------------------
#
# Coordinates are strings with one decimal: the template engine would render
# floats through the locale's number format, which is no good inside SVG.

WIDTH = 760
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 48, 12, 12, 28


@dataclass(frozen=True)
class Shape:
    """A rectangle or a dot, with the text a pointer or screen reader gets."""

    x: str
    y: str
    width: str = ""
    height: str = ""
    fill: str = ""
    title: str = ""


@dataclass(frozen=True)
class Label:
    x: str
    y: str
    text: str
    anchor: str = "middle"


@dataclass(frozen=True)
class Gridline:
    """A horizontal line across the plot with its value on the left."""

    y: str
    label: str
    reference: bool = False


@dataclass(frozen=True)
class Chart:
    """An SVG picture: `title` and `description` are what assistive technology reads."""

    id: str
    title: str
    description: str
    width: int
    height: int
    rects: list[Shape] = field(default_factory=list)
    dots: list[Shape] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    gridlines: list[Gridline] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    plot_left: str = str(MARGIN_LEFT)
    plot_right: str = str(WIDTH - MARGIN_RIGHT)


def _n(value: float) -> str:
    return f"{value:.1f}"


def _nice_scale(maximum: float, *, ticks: int = 4, integer: bool = False) -> tuple[float, float]:
    """Return (top, step): a round top value at or above `maximum`, split in round steps."""
    if maximum <= 0:
        maximum = ticks if integer else 1
    raw_step = maximum / ticks
    if integer:
        # Counts: no gridline at 2.5 events.
        raw_step = max(1, raw_step)
    magnitude = 10 ** math.floor(math.log10(raw_step))
    for multiple in (1, 2, 5, 10) if integer else (1, 2, 2.5, 5, 10):
        step = multiple * magnitude
        if step >= raw_step:
            break
    return step * math.ceil(maximum / step), step


def _day_label(day: datetime.date) -> str:
    return f"{day.day} {day:%b}"


def _day_title(day: datetime.date) -> str:
    return f"{day:%a} {day.day} {day:%b %Y}"


def _vertical_frame(
    height: int, top_value: float, step: float, fmt: Callable[[float], str]
) -> tuple[list[Gridline], Callable[[float], float]]:
    """Return the gridlines of a plot and a function from value to y."""
    bottom = height - MARGIN_BOTTOM
    plot_height = bottom - MARGIN_TOP

    def y_of(value: float) -> float:
        return bottom - plot_height * (value / top_value if top_value else 0)

    gridlines = []
    value = 0.0
    while value <= top_value + step / 1000:
        gridlines.append(Gridline(y=_n(y_of(value)), label=fmt(value)))
        value += step
    return gridlines, y_of


def _day_slots(days: list[DayStats], height: int) -> tuple[float, list[Label]]:
    """Return the width of one day's slot and the labels under the x axis (one a week)."""
    slot = (WIDTH - MARGIN_LEFT - MARGIN_RIGHT) / max(1, len(days))
    labels = [
        Label(
            x=_n(MARGIN_LEFT + slot * (index + 0.5)), y=_n(height - 8), text=_day_label(stats.day)
        )
        for index, stats in enumerate(days)
        if (len(days) - 1 - index) % 7 == 0
    ]
    return slot, labels


def outcomes_chart(dashboard: Dashboard, height: int = 260) -> Chart:
    """Stack each day's events by outcome."""
    days = dashboard.days
    top_value, step = _nice_scale(max((day.total for day in days), default=0), integer=True)
    gridlines, y_of = _vertical_frame(height, top_value, step, lambda v: f"{v:g}")
    slot, labels = _day_slots(days, height)
    rects = []
    for index, stats in enumerate(days):
        x = MARGIN_LEFT + slot * index + slot * 0.125
        stacked = 0
        for outcome in Outcome:
            count = stats.counts.get(outcome, 0)
            if not count:
                continue
            y_top, y_bottom = y_of(stacked + count), y_of(stacked)
            rects.append(
                Shape(
                    x=_n(x),
                    y=_n(y_top),
                    width=_n(slot * 0.75),
                    height=_n(y_bottom - y_top),
                    fill=OUTCOME_COLOURS[outcome],
                    title=f"{_day_title(stats.day)}: {count} {outcome.label}",
                )
            )
            stacked += count
    totals = dashboard.totals
    busiest = max(days, key=lambda day: day.total)
    summary = (
        ", ".join(f"{count} {label}" for label, count in totals.outcome_counts if count)
        or "no events"
    )
    description = (
        f"From {_day_title(dashboard.first_day)} to {_day_title(dashboard.last_day)}: {summary}."
    )
    if busiest.total:
        description += f" Busiest day {_day_title(busiest.day)} with {busiest.total} events."
    return Chart(
        id="chart-outcomes",
        title=f"Verification events per day by outcome, last {len(days)} days",
        description=description,
        width=WIDTH,
        height=height,
        rects=rects,
        gridlines=gridlines,
        labels=labels,
    )


def conversion_chart(dashboard: Dashboard, height: int = 200) -> Chart:
    """Draw succeeded / started per day as a line, broken on days with no start."""
    days = dashboard.days
    # Above 100% when codes sent one day are checked the next.
    highest = max((day.conversion or 0 for day in days), default=0)
    top_value, step = (100, 25) if highest <= 100 else _nice_scale(highest)
    gridlines, y_of = _vertical_frame(height, top_value, step, lambda v: f"{v:g}%")
    slot, labels = _day_slots(days, height)
    lines, dots, segment = [], [], []
    for index, stats in enumerate(days):
        rate = stats.conversion
        if rate is None:
            if segment:
                lines.append(" ".join(segment))
            segment = []
            continue
        x, y = MARGIN_LEFT + slot * (index + 0.5), y_of(rate)
        segment.append(f"{_n(x)},{_n(y)}")
        dots.append(
            Shape(
                x=_n(x),
                y=_n(y),
                fill=OUTCOME_COLOURS[Outcome.SUCCEEDED],
                title=(
                    f"{_day_title(stats.day)}: {rate:.0f}% "
                    f"({stats.succeeded} succeeded of {stats.started} started"
                    f"{_per_success(stats)})"
                ),
            )
        )
    if segment:
        lines.append(" ".join(segment))
    overall = dashboard.totals.conversion
    if overall is not None:
        gridlines.append(
            Gridline(y=_n(y_of(overall)), label=f"{overall:.0f}% overall", reference=True)
        )
        description = (
            f"Overall {overall:.1f}%: {dashboard.totals.succeeded} succeeded of "
            f"{dashboard.totals.started} started{_per_success(dashboard.totals)}."
        )
    else:
        description = "No verification started in this period."
    return Chart(
        id="chart-conversion",
        title=f"Conversion rate per day (succeeded / started), last {len(days)} days",
        description=description,
        width=WIDTH,
        height=height,
        dots=dots,
        lines=lines,
        gridlines=gridlines,
        labels=labels,
    )


def _per_success(stats: DayStats) -> str:
    ratio = stats.codes_per_success
    return "" if ratio is None else f"; {ratio:.2f} codes sent per success"


def spend_charts(dashboard: Dashboard, height: int = 200) -> list[Chart]:
    """Draw the spend per day, one chart per currency (currencies do not add up)."""
    charts = []
    days = dashboard.days
    slot, labels = _day_slots(days, height)
    totals = dashboard.totals.spend
    for currency in dashboard.currencies:
        amounts = [float(day.spend.get(currency, 0)) for day in days]
        top_value, step = _nice_scale(max(amounts, default=0))
        gridlines, y_of = _vertical_frame(height, top_value, step, lambda v: f"{v:g}")
        rects = [
            Shape(
                x=_n(MARGIN_LEFT + slot * index + slot * 0.125),
                y=_n(y_of(amount)),
                width=_n(slot * 0.75),
                height=_n(y_of(0) - y_of(amount)),
                fill=OUTCOME_COLOURS[Outcome.STARTED],
                title=f"{_day_title(stats.day)}: {stats.spend[currency]:.2f} {currency}",
            )
            for index, (stats, amount) in enumerate(zip(days, amounts, strict=True))
            if amount
        ]
        charts.append(
            Chart(
                id=f"chart-spend-{currency.lower()}",
                title=f"Spend per day in {currency}, last {len(days)} days",
                description=f"Total {totals[currency]:.2f} {currency}.",
                width=WIDTH,
                height=height,
                rects=rects,
                gridlines=gridlines,
                labels=labels,
            )
        )
    return charts


def offenders_chart(offenders: list[Offender], *, chart_id: str, title: str) -> Chart:
    """Draw one horizontal bar per number or client, longest first."""
    row_height, label_width = 26, 150
    height = MARGIN_TOP * 2 + row_height * max(1, len(offenders))
    top_value = max((offender.failures for offender in offenders), default=1)
    bar_space = WIDTH - label_width - MARGIN_RIGHT - 48
    rects, labels = [], []
    for index, offender in enumerate(offenders):
        y = MARGIN_TOP + row_height * index
        width = max(1.0, bar_space * offender.failures / top_value)
        rects.append(
            Shape(
                x=_n(label_width),
                y=_n(y + 4),
                width=_n(width),
                height=_n(row_height - 8),
                fill=OUTCOME_COLOURS[Outcome.TOO_MANY_ATTEMPTS],
                title=f"{offender.label}: {offender.failures} failed attempts",
            )
        )
        labels.append(
            Label(
                x=_n(label_width - 8),
                y=_n(y + row_height / 2 + 4),
                text=offender.label,
                anchor="end",
            )
        )
        labels.append(
            Label(
                x=_n(label_width + width + 6),
                y=_n(y + row_height / 2 + 4),
                text=str(offender.failures),
                anchor="start",
            )
        )
    if offenders:
        first = offenders[0]
        description = (
            f"{len(offenders)} shown; the most: {first.label}, {first.failures} failed attempts."
        )
    else:
        description = "No failed attempts in this period."
    return Chart(
        id=chart_id,
        title=title,
        description=description,
        width=WIDTH,
        height=height,
        rects=rects,
        labels=labels,
    )
