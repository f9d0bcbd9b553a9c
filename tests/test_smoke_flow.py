import pytest

from .conftest import NUMBER, last_code, messages_of, pending, start_login

pytestmark = pytest.mark.django_db


def test_phone_login_end_to_end(client, outbox):
    response = start_login(client)
    assert response.status_code == 302
    assert response["Location"] == "/verify/"
    assert pending(client)["number"] == NUMBER
    assert outbox[-1].message == f"Passwordless code: {outbox[-1].code}. Valid for 5 minutes."

    page = client.get("/verify/")
    assert "+1 415 ••• ••00" in page.content.decode()

    response = client.post("/verify/", {"code": last_code(outbox)})
    assert response.status_code == 302
    assert response["Location"] == "/"
    home = client.get("/")
    assert "Hello +1 415-555-0100" in home.content.decode()
    assert pending(client) is None
    assert "You are logged in." in messages_of(home)
