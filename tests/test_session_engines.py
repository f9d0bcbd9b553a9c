"""The site's session engines (passwordless.sessions) against Django's own.

They must store what Django's store, honour what Django honours (signals,
the model's manager), and only spare the queries that ask nothing new.
"""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from django.contrib.sessions.backends import cached_db as django_cached_db
from django.contrib.sessions.backends import db as django_db
from django.contrib.sessions.backends.base import CreateError, UpdateError
from django.contrib.sessions.models import Session
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.db import connection, transaction
from django.db.models.signals import post_delete, pre_delete
from django.test.utils import CaptureQueriesContext

from passwordless import sessions
from passwordless.sessions import cached_db, db

pytestmark = pytest.mark.django_db

ENGINES = [db.SessionStore, cached_db.SessionStore]
DJANGOS = {
    db.SessionStore: django_db.SessionStore,
    cached_db.SessionStore: django_cached_db.SessionStore,
}


def life_of_a_session(store_class) -> tuple[dict, int, list[str]]:
    """Create a session, write to it, move it to a new key, write again.

    Returns the stored data, the queries it took, and the keys it had (the
    queries of a database cache included).
    """
    sessions.cache_generation()  # read this second, as most requests find it
    with CaptureQueriesContext(connection) as queries:
        store = store_class()
        store["pending"] = {"number": "+14155550100"}
        store.save()
        first = store.session_key
        store.cycle_key()
        store["_auth_user_id"] = "1"
        store.save()
        # The end of the request, with nothing new to write.
        store.save()
    row = Session.objects.get(session_key=store.session_key)
    return store_class().decode(row.session_data), len(queries), [first, store.session_key]


@pytest.mark.parametrize("engine", ENGINES)
def test_a_session_stores_what_djangos_stores_in_fewer_queries(engine):
    ours, our_queries, (our_first, our_last) = life_of_a_session(engine)
    theirs, their_queries, (their_first, their_last) = life_of_a_session(DJANGOS[engine])
    assert ours == theirs == {"pending": {"number": "+14155550100"}, "_auth_user_id": "1"}
    for old, new in ((our_first, our_last), (their_first, their_last)):
        assert old != new
        assert not Session.objects.filter(session_key=old).exists()
    # No "is this random key taken?" SELECT, one DELETE for the old row, and
    # no write for a save with nothing new.
    assert our_queries < their_queries


@pytest.mark.parametrize("engine", ENGINES)
def test_deleting_a_session_sends_djangos_delete_signals(engine):
    deleted = []

    def receiver(sender, instance, **kwargs):
        deleted.append(instance.session_key)

    store = engine()
    store["a"] = 1
    store.save()
    store_key = store.session_key
    pre_delete.connect(receiver, sender=Session)
    post_delete.connect(receiver, sender=Session)
    try:
        store.flush()
    finally:
        pre_delete.disconnect(receiver, sender=Session)
        post_delete.disconnect(receiver, sender=Session)
    assert deleted == [store_key, store_key]
    assert not Session.objects.exists()


@pytest.mark.parametrize("engine", ENGINES)
def test_a_new_key_that_is_taken_is_not_overwritten(engine, monkeypatch):
    taken = engine()
    taken["owner"] = "someone else"
    taken.save()
    keys = iter([taken.session_key, "k" * 32])
    monkeypatch.setattr(sessions, "get_random_string", lambda *args: next(keys))
    store = engine()
    store["owner"] = "me"
    store.save()
    assert store.session_key == "k" * 32
    assert engine(taken.session_key)["owner"] == "someone else"
    assert engine("k" * 32)["owner"] == "me"


@pytest.mark.parametrize("engine", ENGINES)
def test_a_save_with_something_new_is_written(engine):
    store = engine()
    store["step"] = 1
    store.save()
    store["step"] = 2
    store.save()
    assert engine(store.session_key)["step"] == 2


# Outside a transaction (the request path), each row is written by one statement.


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("engine", ENGINES)
def test_outside_a_transaction_a_session_stores_what_djangos_stores(engine):
    ours, _queries, (first, last) = life_of_a_session(engine)
    theirs, _queries, _keys = life_of_a_session(DJANGOS[engine])
    assert ours == theirs
    assert not Session.objects.filter(session_key=first).exists()
    assert Session.objects.filter(session_key=last).exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("engine", ENGINES)
def test_outside_a_transaction_a_taken_key_is_not_overwritten(engine, monkeypatch):
    test_a_new_key_that_is_taken_is_not_overwritten(engine, monkeypatch)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("engine", ENGINES)
def test_a_session_deleted_meanwhile_is_an_update_error(engine):
    store = engine()
    store["step"] = 1
    store.save()
    Session.objects.filter(session_key=store.session_key).delete()
    store["step"] = 2
    with pytest.raises(UpdateError):
        store.save()


@pytest.mark.parametrize("engine", ENGINES)
def test_a_moved_session_has_its_new_key_at_once_and_keeps_it(engine):
    store = engine()
    store["a"] = 1
    store.save()
    old = store.session_key
    store.cycle_key()
    # What a user_logged_in receiver reads (a sessions-per-user app, say).
    new = store.session_key
    assert new and new != old
    store["_auth_user_id"] = "1"
    store.save()
    assert store.session_key == new
    assert engine(new)["_auth_user_id"] == "1"
    assert not Session.objects.filter(session_key=old).exists()


def next_key_taken(engine, monkeypatch):
    """Return a session of someone else's and one of mine whose next key drawn is theirs."""
    taken = engine()
    taken["owner"] = "someone else"
    taken.save()
    store = engine()
    store["owner"] = "me"
    store.save()
    keys = iter([taken.session_key, "k" * 32])
    monkeypatch.setattr(sessions, "get_random_string", lambda *args: next(keys))
    return taken, store


@pytest.mark.parametrize("engine", ENGINES)
def test_a_moved_session_whose_new_key_is_taken_gets_another(engine, monkeypatch):
    taken, store = next_key_taken(engine, monkeypatch)
    store.cycle_key()
    store.save()
    assert store.session_key == "k" * 32
    assert engine(taken.session_key)["owner"] == "someone else"
    assert engine("k" * 32)["owner"] == "me"


# A login's transaction (flows.services.session_moving) ends with the session's write.


@pytest.fixture
def copies_in_memory(settings):
    """cached_db's copies in a LocMem cache: the statements captured are the sessions' own."""
    settings.CACHES = {
        **settings.CACHES,
        "sessions": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    }
    settings.SESSION_CACHE_ALIAS = "sessions"


def moved_in_a_transaction(store, save) -> list[str]:
    """Move `store` to a new key and save it with `save` inside a transaction: the statements."""
    with transaction.atomic():
        store.cycle_key()
        store["_auth_user_id"] = "1"
        with CaptureQueriesContext(connection) as queries:
            save()
    return [query["sql"].split()[0].upper() for query in queries]


@pytest.mark.parametrize("engine", ENGINES)
def test_a_session_saved_in_its_callers_transaction_is_one_insert_without_a_savepoint(
    engine, copies_in_memory
):
    ours = engine()
    ours["a"] = 1
    ours.save()
    assert moved_in_a_transaction(ours, ours.save_in_transaction) == ["INSERT"]
    # A plain save inside a transaction keeps its savepoint, as Django's does.
    theirs = engine()
    theirs["a"] = 1
    theirs.save()
    assert moved_in_a_transaction(theirs, theirs.save) == ["SAVEPOINT", "INSERT", "RELEASE"]
    assert engine(ours.session_key)["_auth_user_id"] == "1"
    assert engine(theirs.session_key)["_auth_user_id"] == "1"


@pytest.mark.parametrize("engine", ENGINES)
def test_a_taken_key_fails_the_callers_transaction_and_overwrites_nothing(engine, monkeypatch):
    taken, store = next_key_taken(engine, monkeypatch)
    mine = store.session_key
    with pytest.raises(CreateError), transaction.atomic():
        store.cycle_key()
        store.save_in_transaction()
    assert engine(taken.session_key)["owner"] == "someone else"
    # The transaction rolled back the old row's delete: the session is where it was.
    assert engine(mine)["owner"] == "me"
    assert Session.objects.count() == 2


# The cache's copies (cached_db) --------------------------------------------------------


def copy_of(session_key):
    return caches["default"].get(f"{cached_db.KEY_PREFIX}{session_key}")


def test_a_deleted_session_leaves_no_room_for_a_copy():
    store = cached_db.SessionStore()
    store["_auth_user_id"] = "1"
    store.save()
    old = store.session_key
    store.cycle_key()
    store.save()
    # A request that read the old row before the delete committed finds its
    # copy's place taken: it cannot put the logged-in copy back.
    assert copy_of(old) == cached_db.DELETED
    assert not caches["default"].add(f"{cached_db.KEY_PREFIX}{old}", ("", {"_auth_user_id": "1"}))
    assert cached_db.SessionStore(old).load() == {}


def test_a_copy_of_an_earlier_generation_is_not_served():
    store = cached_db.SessionStore()
    store["step"] = "old"
    store.save()
    assert copy_of(store.session_key) == (sessions.cache_generation(), {"step": "old"})
    # The database moves on while the cache keeps the old copy (a write that
    # failed), and the generation moves on with it.
    Session.objects.filter(session_key=store.session_key).update(
        session_data=store.encode({"step": "new"})
    )
    sessions.cache_generation_advance()
    assert cached_db.SessionStore(store.session_key)["step"] == "new"


def test_a_redis_restart_starts_a_new_generation(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(sessions, "clock", lambda: now[0])
    servers = iter(["run-1", "run-1", "run-2"])
    monkeypatch.setattr(sessions, "_redis_run_id", lambda cache: next(servers))
    first = sessions.cache_generation(caches["default"])
    now[0] += sessions.GENERATION_POLL_INTERVAL
    assert sessions.cache_generation(caches["default"]) == first
    # Redis is a new server (restarted, maybe from an older snapshot).
    now[0] += sessions.GENERATION_POLL_INTERVAL
    assert sessions.cache_generation(caches["default"]) != first


def test_a_failed_read_stops_this_process_using_copies_until_a_new_generation(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(sessions, "clock", lambda: now[0])
    first = sessions.cache_generation()
    assert sessions.cache_generation_usable()
    sessions.cache_generation_failed_read()
    assert not sessions.cache_generation_usable()
    now[0] += sessions.GENERATION_POLL_INTERVAL
    assert sessions.cache_generation() != first
    assert sessions.cache_generation_usable()


def test_a_write_the_cache_refuses_with_an_error_of_its_own_still_starts_a_generation():
    # Redis refusing writes with an error the site does not take for an
    # outage (MISCONF, say): the error is raised, but not before the copy
    # it could not replace is made useless.
    class Refusing(LocMemCache):
        def set(self, *args, **kwargs):
            raise ValueError("MISCONF")

    store = cached_db.SessionStore()
    store._cache = Refusing("refusing", {})
    first = sessions.cache_generation()
    store["step"] = 1
    with pytest.raises(ValueError):
        store.save()
    assert sessions.cache_generation() != first


@pytest.mark.parametrize("engine", ENGINES)
def test_the_async_methods_are_the_same_store(engine):
    store = engine()
    store["a"] = 1
    async_to_sync(store.asave)()
    old = store.session_key
    async_to_sync(store.acycle_key)()
    async_to_sync(store.asave)()
    assert engine(store.session_key)["a"] == 1
    assert not Session.objects.filter(session_key=old).exists()
    async_to_sync(store.aflush)()
    assert not Session.objects.exists()


@pytest.mark.parametrize("engine", ENGINES)
def test_a_deleted_session_is_not_saved_back_under_its_drawn_key(engine):
    store = engine()
    store["a"] = 1
    store.save()
    store.cycle_key()
    store.delete()
    with pytest.raises(UpdateError):
        store.save()
    assert not Session.objects.exists()
