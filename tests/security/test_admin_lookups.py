"""What the admin shows masked stays masked: no URL lookup, ordering or search reads the digits.

The verification log shows each phone number masked (`+1 415 ••• ••23`).
Django's changelist turns any URL parameter on a field of the model into a
filter, so a staff member who may only view the log could ask
`?number__startswith=+1415555012` and read from the rows shown whether the
guess was right, then the next digit, and so on; `?o=` on the number column
would give the same answer through the order of the rows. Only an exact number
may be looked up or searched for: that tells no more than the search box
does. Every other lookup on the number is refused with HTTP 400.

The User admin shows numbers in full to the staff who may see it, so it hides
no digits; lookups from it into the log are refused all the same.
"""

from __future__ import annotations

import datetime

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from accounts.phone import mask_phone_number

from ..factories import UserFactory
from ..factories_log import VerificationLogFactory
from .conftest import attacker, page_text

pytestmark = pytest.mark.django_db

LOG = "/admin/verificationlog/verificationlog/"
USERS = "/admin/accounts/user/"
VICTIM = "+14155550123"
# Right and wrong guesses at the hidden digits, lookup by lookup.
PROBES = [
    ("number__startswith", "+1415555012", "+1415555013"),
    ("number__istartswith", "+1415555012", "+1415555013"),
    ("number__contains", "55501", "55502"),
    ("number__icontains", "55501", "55502"),
    ("number__endswith", "50123", "60123"),
    ("number__iendswith", "50123", "60123"),
    ("number__regex", r"^\+1415555012", r"^\+1415555013"),
    ("number__iregex", r"^\+1415555012", r"^\+1415555013"),
    ("number__gt", "+14155550122", "+14155550123"),
    ("number__gte", "+14155550123", "+14155550124"),
    ("number__lt", "+14155550124", "+14155550123"),
    ("number__lte", "+14155550123", "+14155550122"),
    ("number__range", "+14155550000,+14155550199", "+14155550200,+14155550299"),
    ("number__in", f"{VICTIM},+14155550199", "+14155550198,+14155550199"),
    ("number__iexact", "+1415555____", "+1415556____"),
    ("number__iexact", "+1415555%", "+1415556%"),
    ("number__isnull", "false", "true"),
    # Through the user: the log never shows the user's number at all.
    ("user__phone_number_for_2fa__startswith", "+1415555012", "+1415555013"),
    ("user__phone_number_for_2fa", VICTIM, "+14155550199"),
    ("user__verification_logs__number__startswith", "+1415555012", "+1415555013"),
]


def staff(*codenames):
    user = UserFactory(is_staff=True, phone_number_for_2fa=None)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


@pytest.fixture
def reader():
    """A browser of a staff member who may only view the verification log."""
    browser = attacker()
    browser.force_login(staff("view_verificationlog"))
    return browser


@pytest.fixture
def rows():
    """Three log rows, written in an order that is not the order of their numbers."""
    owner = UserFactory(phone_number_for_2fa=VICTIM)
    now = timezone.now()
    made = {}
    for minutes, (number, request_id) in enumerate(
        [("+14155550199", "first"), (VICTIM, "victim"), ("+14155550150", "last")]
    ):
        made[request_id] = VerificationLogFactory(
            number=number,
            request_id=request_id,
            user=owner if number == VICTIM else None,
            created_at=now - datetime.timedelta(minutes=10 - minutes),
        )
    return made


def shown(response) -> list[str]:
    """Return the request ids of the rows the changelist shows, in its order."""
    return [row.request_id for row in response.context["cl"].result_list]


@pytest.mark.parametrize(("lookup", "right", "wrong"), PROBES, ids=[p[0] for p in PROBES])
def test_a_view_only_reader_cannot_test_the_hidden_digits(reader, rows, lookup, right, wrong):
    on_right = reader.get(LOG, {lookup: right})
    on_wrong = reader.get(LOG, {lookup: wrong})

    # Refused both times alike: no rows, no count, nothing to compare.
    assert on_right.status_code == on_wrong.status_code == 400
    assert page_text(on_right) == page_text(on_wrong)
    assert "victim" not in page_text(on_right)


def test_a_refused_lookup_is_refused_alongside_documented_filters(reader, rows):
    response = reader.get(LOG, {"outcome": "started", "number__startswith": "+1415555012"})

    assert response.status_code == 400


def test_ordering_by_the_masked_number_is_not_offered_and_not_obeyed(reader, rows):
    page = reader.get(LOG)
    column = page.context["cl"].list_display.index("masked_number")
    header = page.context["result_headers"][column]
    newest_first = ["last", "victim", "first"]

    assert header["text"] == "phone number"
    assert not header["sortable"]
    assert shown(page) == newest_first
    for order in (f"{column}", f"-{column}", f"{column}.1", f"-{column}.1"):
        assert shown(reader.get(LOG, {"o": order})) == newest_first


@pytest.mark.parametrize(
    "term",
    ["+1415555012", "1415555012", "55501", "50123", "0123", "+1415555012%", "+1415555____", "%"],
)
def test_search_finds_only_an_exact_number(reader, rows, term):
    assert shown(reader.get(LOG, {"q": term})) == []


@pytest.mark.parametrize(
    "query",
    [
        {"q": VICTIM},
        {"q": "+1 415 555 0123"},
        {"q": "+1 (415) 555-0123"},
        {"number": VICTIM},
        {"number__exact": VICTIM},
    ],
)
def test_an_exact_number_still_finds_its_rows(reader, rows, query):
    response = reader.get(LOG, query)

    assert shown(response) == ["victim"]
    assert f'<td class="field-masked_number">{mask_phone_number(VICTIM)}</td>' in page_text(
        response
    )


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"outcome": "started"}, ["last", "victim", "first"]),
        ({"outcome__exact": "wrong_code"}, []),
        ({"purpose__exact": "login"}, ["last", "victim", "first"]),
        ({"backend__exact": "vonage"}, []),
        ({"ip": "192.0.2.99", "outcome__in": "wrong_code,too_many_attempts"}, []),
        ({"q": "victim"}, ["victim"]),
    ],
)
def test_the_documented_filters_still_work(reader, rows, query, expected):
    response = reader.get(LOG, query)

    assert response.status_code == 200
    assert shown(response) == expected


def test_the_date_drilldown_still_works(reader, rows):
    today = timezone.localdate()
    query = {"created_at__year": today.year, "created_at__month": today.month}

    assert shown(reader.get(LOG, query)) == ["last", "victim", "first"]


def test_the_user_admin_refuses_lookups_into_the_log(rows):
    browser = attacker()
    browser.force_login(staff("view_user"))

    on_right = browser.get(USERS, {"verification_logs__number__startswith": "+1415555012"})
    on_wrong = browser.get(USERS, {"verification_logs__number__startswith": "+1415555013"})

    assert on_right.status_code == on_wrong.status_code == 400
