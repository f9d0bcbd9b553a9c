"""The verification log in the admin, its dashboard, and the lost-phone user action."""

import datetime
import logging
from decimal import Decimal

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Permission

from accounts.models import User
from accounts.phone import mask_phone_number
from verificationlog.dashboard import verification_dashboard_get
from verificationlog.models import Outcome, Purpose

from .factories import UserFactory
from .factories_log import VerificationLogFactory

pytestmark = pytest.mark.django_db

NOW = datetime.datetime(2026, 11, 20, 12, 0, tzinfo=datetime.UTC)
NUMBER = "+14155550100"
MASKED = "+1 415 ••• ••00"
ATTACKED = "+447700900123"
ATTACKED_MASKED = mask_phone_number(ATTACKED)
CHANGELIST = "/admin/verificationlog/verificationlog/"
DASHBOARD = "/admin/verificationlog/verificationlog/dashboard/"
USERS = "/admin/accounts/user/"


@pytest.fixture(autouse=True)
def _noon(time_machine):
    # Noon, so that "today" and "yesterday" never straddle midnight.
    time_machine.move_to(NOW, tick=False)


def staff(*codenames):
    user = UserFactory(is_staff=True, phone_number_for_2fa=None)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


@pytest.fixture
def reader_client(client):
    client.force_login(staff("view_verificationlog"))
    return client


def log(days_ago=0, hours_ago=0, **fields):
    return VerificationLogFactory(
        created_at=NOW - datetime.timedelta(days=days_ago, hours=hours_ago), **fields
    )


# The log's changelist ----------------------------------------------------------


def test_changelist_shows_rows_with_the_number_masked(reader_client):
    log(outcome=Outcome.SUCCEEDED, number=NUMBER, request_id="req-1")

    response = reader_client.get(CHANGELIST)
    html = response.content.decode()

    assert response.status_code == 200
    assert response.context["cl"].result_count == 1
    assert MASKED in html
    assert NUMBER not in html
    assert "req-1" in html
    assert f'href="{DASHBOARD}"' in html


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"outcome": Outcome.WRONG_CODE}, {"wrong"}),
        ({"purpose": Purpose.API}, {"api"}),
        ({"backend": "vonage"}, {"vonage"}),
        ({"created_at__year": "2026", "created_at__month": "11", "created_at__day": "20"}, None),
    ],
)
def test_changelist_filters(reader_client, query, expected):
    log(request_id="wrong", outcome=Outcome.WRONG_CODE)
    log(request_id="api", purpose=Purpose.API)
    log(request_id="vonage", backend="vonage")
    log(request_id="old", days_ago=3)

    response = reader_client.get(CHANGELIST, query)

    shown = {row.request_id for row in response.context["cl"].result_list}
    assert shown == (expected or {"wrong", "api", "vonage"})


@pytest.mark.parametrize("term", [NUMBER, "+1 415 555 0100", "+1 (415) 555-0100", "req-1"])
def test_search_by_number_in_any_format_or_request_id(reader_client, term):
    log(number=NUMBER, request_id="req-1")
    log(number=ATTACKED, request_id="req-2")

    response = reader_client.get(CHANGELIST, {"q": term})

    assert [row.request_id for row in response.context["cl"].result_list] == ["req-1"]


def test_the_log_is_read_only(reader_client):
    row = log()

    assert reader_client.get(f"{CHANGELIST}add/").status_code == 403
    page = reader_client.get(f"{CHANGELIST}{row.pk}/change/")
    assert page.status_code == 200
    assert MASKED in page.content.decode()
    assert NUMBER not in page.content.decode()
    assert 'name="_save"' not in page.content.decode()
    change = reader_client.post(f"{CHANGELIST}{row.pk}/change/", {"outcome": "succeeded"})
    assert change.status_code == 403
    delete = reader_client.post(f"{CHANGELIST}{row.pk}/delete/", {"post": "yes"})
    assert delete.status_code == 403
    row.refresh_from_db()
    assert row.outcome == Outcome.STARTED


def test_only_superusers_may_delete_rows(admin_client):
    row = log()

    response = admin_client.post(f"{CHANGELIST}{row.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not type(row).objects.filter(pk=row.pk).exists()


# The dashboard -------------------------------------------------------------------


def test_dashboard_is_for_staff_who_may_read_the_log(client):
    assert client.get(DASHBOARD)["Location"].startswith("/admin/login/")
    client.force_login(UserFactory())
    assert client.get(DASHBOARD)["Location"].startswith("/admin/login/")
    client.force_login(staff())
    assert client.get(DASHBOARD).status_code == 403
    client.force_login(staff("view_verificationlog"))
    assert client.get(DASHBOARD).status_code == 200


def make_month():
    # Today: 4 codes sent, 3 right (two priced), 1 wrong from the attacker.
    for _ in range(4):
        log(outcome=Outcome.STARTED)
    log(outcome=Outcome.SUCCEEDED, price=Decimal("0.05"), currency="EUR")
    log(outcome=Outcome.SUCCEEDED, price=Decimal("0.05"), currency="EUR")
    log(outcome=Outcome.SUCCEEDED)
    log(outcome=Outcome.WRONG_CODE, number=ATTACKED, ip="198.51.100.9")
    # Yesterday: 2 sent, 1 right; the attacker fails 3 times, one IP is limited twice.
    log(days_ago=1, outcome=Outcome.STARTED)
    log(days_ago=1, outcome=Outcome.STARTED, purpose=Purpose.API)
    log(days_ago=1, outcome=Outcome.SUCCEEDED, price=Decimal("0.10"), currency="EUR")
    for _ in range(2):
        log(days_ago=1, outcome=Outcome.WRONG_CODE, number=ATTACKED, ip="198.51.100.9")
    log(days_ago=1, outcome=Outcome.TOO_MANY_ATTEMPTS, number=ATTACKED, ip="198.51.100.9")
    for _ in range(2):
        log(days_ago=1, outcome=Outcome.RATE_LIMITED, number=NUMBER, ip="203.0.113.50")
    # Not failures; a cost in another currency.
    log(days_ago=5, outcome=Outcome.EXPIRED, number=NUMBER)
    log(days_ago=5, outcome=Outcome.SUCCEEDED, price=Decimal("0.07"), currency="USD")
    # Outside the 30 days.
    for _ in range(5):
        log(days_ago=30, outcome=Outcome.WRONG_CODE, number="+33612345678", ip="192.0.2.1")


def test_dashboard_numbers(reader_client):
    make_month()

    response = reader_client.get(DASHBOARD)
    dashboard = response.context["dashboard"]

    assert len(dashboard.days) == 30
    assert dashboard.first_day == datetime.date(2026, 10, 22)
    today, yesterday = dashboard.days[-1], dashboard.days[-2]
    assert (today.started, today.succeeded, today.failed_attempts) == (4, 3, 1)
    assert today.conversion == 75.0
    assert today.codes_per_success == pytest.approx(4 / 3)
    assert today.spend == {"EUR": Decimal("0.10")}
    assert (yesterday.started, yesterday.succeeded, yesterday.failed_attempts) == (2, 1, 5)
    assert yesterday.conversion == 50.0
    totals = dashboard.totals
    assert (totals.started, totals.succeeded) == (6, 5)
    assert totals.conversion == pytest.approx(100 * 5 / 6)
    assert totals.spend == {"EUR": Decimal("0.20"), "USD": Decimal("0.07")}
    assert totals.counts[Outcome.EXPIRED] == 1
    assert [(o.label, o.failures) for o in dashboard.top_numbers] == [
        (ATTACKED_MASKED, 4),
        (MASKED, 2),
    ]
    assert [(o.label, o.failures) for o in dashboard.top_ips] == [
        ("198.51.100.9", 4),
        ("203.0.113.50", 2),
    ]


def test_dashboard_draws_pictures_with_titles_and_tables(reader_client):
    make_month()

    html = reader_client.get(DASHBOARD).content.decode()

    assert html.count('role="img"') == 6  # outcomes, conversion, EUR, USD, numbers, IPs
    assert '<title id="chart-outcomes-title">Verification events per day by outcome' in html
    assert "<title>Fri 20 Nov 2026: 4 started</title>" in html
    assert (
        "<title>Fri 20 Nov 2026: 75% (3 succeeded of 4 started; "
        "1.33 codes sent per success)</title>"
    ) in html
    assert '<title id="chart-spend-eur-title">Spend per day in EUR' in html
    for table in ("table-outcomes", "table-spend", "table-numbers", "table-ips"):
        assert f'id="{table}"' in html
    assert ATTACKED_MASKED in html
    assert ATTACKED not in html
    assert NUMBER not in html
    assert f"{CHANGELIST}?ip=198.51.100.9&amp;outcome__in=" in html


def test_decoy_starts_count_as_neither_codes_sent_nor_failed_conversions(reader_client):
    log(outcome=Outcome.STARTED)
    log(outcome=Outcome.SUCCEEDED)
    log(outcome=Outcome.STARTED, detail="decoy", request_id="", backend="")

    response = reader_client.get(DASHBOARD)
    today = response.context["dashboard"].today

    assert (today.started, today.decoys, today.conversion) == (1, 1, 100.0)
    assert "Decoy starts" in response.content.decode()


def row_cells(html, heading):
    """Return the data cells of the first table row whose heading starts with `heading`."""
    start = html.index(f'<th scope="row">{heading}')
    row = html[start : html.index("</tr>", start)]
    return [cell.split("</td>")[0].strip() for cell in row.split("<td>")[1:]]


def test_dashboard_shows_codes_sent_per_successful_login_beside_conversion(reader_client):
    # Today: 4 first codes, a resend and a call the person asked for: 6 codes
    # sent for 5 people who got in. The decoys sent nothing.
    for _ in range(4):
        log(outcome=Outcome.STARTED)
    log(outcome=Outcome.STARTED, detail="resend")
    log(outcome=Outcome.STARTED, detail="call")
    for _ in range(2):
        log(outcome=Outcome.STARTED, detail="decoy", request_id="", backend="")
    for _ in range(5):
        log(outcome=Outcome.SUCCEEDED)
    # Yesterday: codes sent, nobody got in. Two days ago: one code each.
    log(days_ago=1, outcome=Outcome.STARTED)
    log(days_ago=1, outcome=Outcome.STARTED, detail="resend")
    for _ in range(3):
        log(days_ago=2, outcome=Outcome.STARTED)
        log(days_ago=2, outcome=Outcome.SUCCEEDED)

    response = reader_client.get(DASHBOARD)

    dashboard = response.context["dashboard"]
    today, yesterday, before = dashboard.days[-1], dashboard.days[-2], dashboard.days[-3]
    assert today.codes_per_success == pytest.approx(6 / 5)
    assert yesterday.codes_per_success is None
    assert before.codes_per_success == 1.0
    assert dashboard.totals.codes_per_success == pytest.approx(11 / 8)
    html = response.content.decode()
    assert row_cells(html, "Conversion") == ["83.3%", "72.7%"]
    assert row_cells(html, "Codes sent per success") == ["1.20", "1.38"]
    # Per day, in the table beside the day's conversion.
    table = html[html.index('id="table-outcomes"') :]
    assert '<th scope="col">Conversion</th><th scope="col">Codes sent per success</th>' in table
    link = f"{CHANGELIST}?created_at__year=2026&amp;created_at__month=11&amp;created_at__day="
    days = {day: row_cells(table, f'<a href="{link}{day}"')[-2:] for day in (20, 19, 18)}
    assert days == {20: ["83%", "1.20"], 19: ["0%", "\N{EN DASH}"], 18: ["100%", "1.00"]}
    assert "72.7%: 8 succeeded of 11 started; 1.38 codes sent per success." in html


def test_dashboard_for_one_purpose(reader_client):
    make_month()

    dashboard = reader_client.get(DASHBOARD, {"purpose": "api"}).context["dashboard"]

    assert dashboard.totals.counts == {Outcome.STARTED: 1}


def test_dashboard_ignores_an_unknown_purpose(reader_client):
    log()

    response = reader_client.get(DASHBOARD, {"purpose": "<script>"})

    assert response.status_code == 200
    assert response.context["dashboard"].totals.started == 1


def test_dashboard_with_an_empty_log(reader_client):
    html = reader_client.get(DASHBOARD).content.decode()

    assert "No verification started in this period." in html
    assert "No price was reported in this period." in html
    assert "No failed attempts in this period." in html


def test_dashboard_days_follow_the_time_zone(settings):
    settings.TIME_ZONE = "America/Los_Angeles"
    # 02:00 UTC on the 20th is still the 19th in California.
    log(hours_ago=10)

    dashboard = verification_dashboard_get()

    assert dashboard.last_day == datetime.date(2026, 11, 20)
    assert dashboard.days[-2].started == 1


def test_admin_index_links_to_the_dashboard_for_those_who_may_read_it(client):
    client.force_login(staff("view_verificationlog"))
    assert DASHBOARD in client.get("/admin/").content.decode()
    client.force_login(staff("view_user"))
    assert DASHBOARD not in client.get("/admin/").content.decode()


# Lost phone ----------------------------------------------------------------------


def lost_phone(client, *users, **extra):
    return client.post(
        USERS, {"action": "lost_phone", "_selected_action": [u.pk for u in users], **extra}
    )


def test_lost_phone_asks_for_confirmation_first(admin_client):
    person = UserFactory(phone_number_for_2fa=NUMBER, is_2fa_enabled=True)

    response = lost_phone(admin_client, person)

    html = response.content.decode()
    assert response.status_code == 200
    assert "Lost phone: are you sure?" in html
    assert MASKED in html
    assert NUMBER not in html
    assert 'name="confirmed" value="yes"' in html
    person.refresh_from_db()
    assert person.phone_number_for_2fa == NUMBER
    assert person.is_2fa_enabled


def test_lost_phone_turns_off_the_second_factor_clears_the_number_and_records_it(
    admin_client, admin_user, caplog
):
    caplog.set_level(logging.INFO, logger="accounts")
    person = UserFactory(phone_number_for_2fa=NUMBER, is_2fa_enabled=True)
    bystander = UserFactory(phone_number_for_2fa=ATTACKED, is_2fa_enabled=True)

    response = lost_phone(admin_client, person, confirmed="yes")

    assert response.status_code == 302
    person.refresh_from_db()
    assert person.phone_number_for_2fa is None
    assert not person.is_2fa_enabled
    bystander.refresh_from_db()
    assert bystander.is_2fa_enabled
    entry = LogEntry.objects.get(object_id=str(person.pk))
    assert entry.action_flag == CHANGE
    assert entry.user == admin_user
    assert "Lost phone" in entry.get_change_message()
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("lost phone")]
    assert f"user_id={person.pk}" in line
    assert MASKED in line
    assert NUMBER not in line
    page = admin_client.get(USERS)
    assert "Turned off the second factor and cleared the phone number of 1 user." in [
        str(m) for m in page.context["messages"]
    ]


def test_lost_phone_warns_when_the_phone_was_the_only_way_in(admin_client):
    person = UserFactory(phone_number_for_2fa=NUMBER)
    person.set_unusable_password()
    person.save()

    html = lost_phone(admin_client, person).content.decode()

    assert "No password: cannot log in until you set a new phone number or a password." in html


def test_lost_phone_needs_the_change_permission(client):
    client.force_login(staff("view_user"))
    person = UserFactory(phone_number_for_2fa=NUMBER, is_2fa_enabled=True)

    lost_phone(client, person, confirmed="yes")

    person.refresh_from_db()
    assert person.phone_number_for_2fa == NUMBER
    assert not LogEntry.objects.exists()
    assert User.objects.get(pk=person.pk).is_2fa_enabled


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("/admin/accounts/verificationlog/", CHANGELIST),
        ("/admin/accounts/verificationlog/dashboard/?days=7", f"{DASHBOARD}?days=7"),
        ("/admin/accounts/verificationlog/12/change/", f"{CHANGELIST}12/change/"),
    ],
)
def test_the_logs_admin_pages_from_before_its_app_lead_to_where_they_are(reader_client, old, new):
    # Operators' bookmarks and links in tickets from before the app split.
    response = reader_client.get(old)
    assert response.status_code == 302
    assert response["Location"] == new
    assert reader_client.get(new).status_code in {200, 302}
