"""Django's extension points reach the site's user reads, last_login and log rows.

Other apps hook into a project through save signals, database routers and the
model's default manager (audit trails, history, read replicas, soft-deleted
accounts). Each test here installs one such hook and logs in by phone through
the test client, as a person would.
"""

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import UserManager
from django.contrib.auth.signals import user_logged_in
from django.contrib.sessions.models import Session
from django.db.models.signals import post_save, pre_save

from accounts.models import User
from tests.conftest import NUMBER, last_code, start_login
from tests.factories import UserFactory
from verificationlog.models import Outcome, VerificationLog

pytestmark = pytest.mark.django_db


def phone_login(client, outbox):
    start_login(client)
    return client.post("/verify/", {"code": last_code(outbox)})


@pytest.fixture
def saves():
    """Record every pre_save and post_save of a User, as an audit app would."""
    seen = []

    def record(signal_name):
        def receiver(sender, instance, update_fields=None, **kwargs):
            seen.append(
                (signal_name, instance.pk, instance.last_login, frozenset(update_fields or ()))
            )

        return receiver

    before, after = record("pre_save"), record("post_save")
    pre_save.connect(before, sender=User, weak=False)
    post_save.connect(after, sender=User, weak=False)
    yield seen
    pre_save.disconnect(before, sender=User)
    post_save.disconnect(after, sender=User)


def test_a_save_receiver_sees_the_last_login_of_a_phone_login(client, outbox, saves):
    user = UserFactory(phone_number_for_2fa=NUMBER)
    saves.clear()

    phone_login(client, outbox)

    user.refresh_from_db()
    assert user.last_login is not None
    last_login = frozenset({"last_login"})
    assert ("pre_save", user.pk, user.last_login, last_login) in saves
    assert ("post_save", user.pk, user.last_login, last_login) in saves


class RecordingRouter:
    """A project's router: sends everything to "default", and remembers what it was asked."""

    reads: list = []
    writes: list = []

    def db_for_read(self, model, **hints):
        self.reads.append(model)
        return "default"

    def db_for_write(self, model, **hints):
        self.writes.append(model)
        return "default"


@pytest.fixture
def router(settings):
    RecordingRouter.reads, RecordingRouter.writes = [], []
    settings.DATABASE_ROUTERS = [f"{__name__}.RecordingRouter"]
    return RecordingRouter


def test_a_database_router_chooses_where_a_phone_login_looks_up_the_number(client, outbox, router):
    # A new number: the log rows name no user, so any User read is the lookup.
    response = phone_login(client, outbox)

    assert response["Location"] == "/"
    assert User in router.reads


def test_a_database_router_chooses_where_last_login_is_written(client, outbox, router):
    UserFactory(phone_number_for_2fa=NUMBER)
    router.writes.clear()

    response = phone_login(client, outbox)

    assert response["Location"] == "/"
    assert User in router.writes


def test_a_database_router_chooses_where_a_logged_in_page_reads_its_user(client, outbox, router):
    phone_login(client, outbox)
    router.reads.clear()

    home = client.get("/")

    assert home.context["user"].phone_number_for_2fa == NUMBER
    assert User in router.reads


class WithoutArchived(UserManager):
    """A project's default manager that hides archived accounts."""

    def get_queryset(self):
        return super().get_queryset().exclude(username__startswith="archived-")


@pytest.fixture
def archived_hidden(monkeypatch):
    manager = WithoutArchived()
    manager.model = User
    manager.name = "objects"
    monkeypatch.setattr(User._meta, "default_manager", manager)
    return manager


def test_an_account_the_default_manager_hides_is_nobodys_session(client, archived_hidden):
    user = UserFactory(phone_number_for_2fa=NUMBER)
    client.force_login(user)
    assert client.get("/").context["user"].is_authenticated

    User.objects.filter(pk=user.pk).update(username="archived-ada")

    assert not client.get("/").context["user"].is_authenticated


def test_an_account_the_default_manager_hides_cannot_log_in_by_phone(
    client, outbox, archived_hidden
):
    UserFactory(phone_number_for_2fa=NUMBER, username="archived-ada")

    phone_login(client, outbox)

    assert not client.get("/").context["user"].is_authenticated


def test_a_save_receiver_sees_each_verification_log_row(client, outbox):
    seen = []

    def receiver(sender, instance, created, **kwargs):
        seen.append((instance.pk, instance.outcome, created))

    post_save.connect(receiver, sender=VerificationLog, weak=False)
    try:
        phone_login(client, outbox)
    finally:
        post_save.disconnect(receiver, sender=VerificationLog)

    rows = list(VerificationLog.objects.order_by("pk").values_list("pk", "outcome"))
    assert [outcome for _, outcome in rows] == [Outcome.STARTED, Outcome.SUCCEEDED]
    assert seen == [(pk, outcome, True) for pk, outcome in rows]


@pytest.mark.parametrize("engine", ["passwordless.sessions.db", "passwordless.sessions.cached_db"])
def test_a_user_logged_in_receiver_reads_the_session_key_the_browser_keeps(
    client, outbox, settings, engine
):
    # A sessions-per-user app records the new session as the login happens.
    settings.SESSION_ENGINE = engine
    seen = []

    def receiver(sender, request, user, **kwargs):
        seen.append(request.session.session_key)

    user_logged_in.connect(receiver)
    try:
        response = phone_login(client, outbox)
    finally:
        user_logged_in.disconnect(receiver)
    assert response.status_code == 302
    kept = client.cookies[django_settings.SESSION_COOKIE_NAME].value
    assert seen == [kept]
    assert Session.objects.filter(session_key=kept).exists()
