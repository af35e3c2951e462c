"""The account API client against a real HTTP server on loopback."""

import json
import socket

import pytest
from werkzeug import Response

from provisioning.account_api import (
    Account,
    AccountApiError,
    create_account,
    delete_account,
    endpoint_for,
    targets_staging,
)

TOKEN = "t0ken"
ANSWER = {"account_id": 17, "username": "qa+login@example.com", "password": "pa55",
          "login_url": "https://login-page.dynamic.test/login"}


def create(httpserver, path: str = "/accounts", **kwargs) -> Account:
    return create_account(url=httpserver.url_for(path), token=TOKEN, name="login-page",
                          host="login-page.dynamic.test", timeout=5, **kwargs)


def test_create_sends_token_and_json_and_parses_201(httpserver):
    httpserver.expect_oneshot_request(
        "/accounts", method="POST",
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        json={"staging": "login-page", "host": "login-page.dynamic.test"},
    ).respond_with_json(ANSWER, status=201)
    account = create(httpserver)
    assert account == Account(account_id="17", username="qa+login@example.com",
                              password="pa55", login_url="https://login-page.dynamic.test/login")
    httpserver.check_assertions()
    (request, _), = httpserver.log
    assert request.headers["Accept"] == "application/json"


@pytest.mark.parametrize("status", [200, 400, 401, 409, 500, 503])
def test_create_answered_other_than_201_is_an_error_with_the_body(httpserver, status):
    httpserver.expect_request("/accounts", method="POST").respond_with_data(
        "database is down", status=status)
    with pytest.raises(AccountApiError) as raised:
        create(httpserver)
    assert raised.value.code == f"HTTP {status}"
    assert raised.value.message == "database is down"
    assert raised.value.call == f"POST {httpserver.url_for('/accounts')}"


def test_a_long_error_body_is_cut(httpserver):
    httpserver.expect_request("/accounts", method="POST").respond_with_data(
        "x" * 5000, status=500)
    with pytest.raises(AccountApiError) as raised:
        create(httpserver)
    assert raised.value.message == "x" * 500


@pytest.mark.parametrize("body", [
    "<html>not json</html>",
    json.dumps({"account_id": 1, "username": "u"}),  # fields missing
    json.dumps(["a", "list"]),
])
def test_create_with_an_invalid_answer(httpserver, body):
    httpserver.expect_request("/accounts", method="POST").respond_with_data(
        body, status=201, content_type="application/json")
    with pytest.raises(AccountApiError) as raised:
        create(httpserver)
    assert raised.value.code == "InvalidResponse"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_connection_refused():
    url = f"http://127.0.0.1:{free_port()}/accounts"
    with pytest.raises(AccountApiError) as raised:
        create_account(url=url, token=TOKEN, name="n", host="h", timeout=5)
    assert raised.value.code == "ConnectionError"
    assert raised.value.call == f"POST {url}"
    assert "refused" in raised.value.message.lower()


def test_a_slow_api_times_out(httpserver):
    import time

    def slow(_request):
        time.sleep(1)
        return Response(json.dumps(ANSWER), status=201)

    httpserver.expect_request("/accounts", method="POST").respond_with_handler(slow)
    with pytest.raises(AccountApiError) as raised:
        create_account(url=httpserver.url_for("/accounts"), token=TOKEN, name="n", host="h",
                       timeout=0.2)
    assert raised.value.code == "ConnectionError"


@pytest.mark.parametrize(("status", "deleted"), [(204, True), (200, True), (202, True),
                                                 (404, False)])
def test_delete(httpserver, status, deleted):
    httpserver.expect_oneshot_request(
        "/accounts/17", method="DELETE", headers={"Authorization": f"Bearer {TOKEN}"},
    ).respond_with_data("", status=status)
    assert delete_account(url=httpserver.url_for("/accounts"), token=TOKEN, account_id="17",
                          timeout=5) is deleted
    httpserver.check_assertions()


def test_delete_refused_is_an_error(httpserver):
    httpserver.expect_request("/accounts/17", method="DELETE").respond_with_data(
        "boom", status=500)
    with pytest.raises(AccountApiError) as raised:
        delete_account(url=httpserver.url_for("/accounts"), token=TOKEN, account_id="17",
                       timeout=5)
    assert (raised.value.code, raised.value.message) == ("HTTP 500", "boom")
    assert raised.value.call == f"DELETE {httpserver.url_for('/accounts/17')}"


def test_delete_quotes_the_account_id(httpserver):
    # The server decodes the path before matching; the raw request line shows the quoting.
    httpserver.expect_oneshot_request("/accounts/a/b c", method="DELETE").respond_with_data(
        "", status=204)
    assert delete_account(url=httpserver.url_for("/accounts"), token=TOKEN, account_id="a/b c",
                          timeout=5)
    httpserver.check_assertions()
    (request, _), = httpserver.log
    assert request.environ["RAW_URI"] == "/accounts/a%2Fb%20c"


def test_url_templating():
    template = "https://{host}/internal/{name}/accounts/"
    assert endpoint_for(template, name="login-page", host="login-page.dynamic.test") == (
        "https://login-page.dynamic.test/internal/login-page/accounts")
    assert targets_staging(template)
    assert targets_staging("https://x/{name}")
    assert not targets_staging("https://accounts.internal/api/staging-accounts")
    assert endpoint_for("https://accounts.internal/api", name="n", host="h") == (
        "https://accounts.internal/api")


def test_templated_url_reaches_the_server(httpserver):
    template = httpserver.url_for("/stagings/{name}/accounts")
    url = endpoint_for(template, name="login-page", host="login-page.dynamic.test")
    httpserver.expect_oneshot_request("/stagings/login-page/accounts", method="POST"
                                      ).respond_with_json(ANSWER, status=201)
    assert create_account(url=url, token=TOKEN, name="login-page",
                          host="login-page.dynamic.test", timeout=5).account_id == "17"
    httpserver.check_assertions()
