"""The account API client against a real HTTP server on loopback."""

import json
import socket
import threading
import time

import pytest
from werkzeug import Response

from provisioning.account_api import (
    MAX_BODY_BYTES,
    Account,
    AccountApiError,
    create_account,
    delete_account,
    endpoint_for,
    is_loopback,
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


@pytest.mark.parametrize(("status", "phrase"), [
    (200, "OK"), (400, "Bad Request"), (401, "Unauthorized"), (409, "Conflict"),
    (500, "Internal Server Error"), (503, "Service Unavailable")])
def test_create_answered_other_than_201_is_an_error_without_the_body(httpserver, status,
                                                                       phrase):
    httpserver.expect_request("/accounts", method="POST").respond_with_data(
        "<html>Traceback: password=hunter2</html>", status=status)
    with pytest.raises(AccountApiError) as raised:
        create(httpserver)
    assert raised.value.code == f"HTTP{status}"
    assert raised.value.message == phrase
    assert raised.value.call == f"POST {httpserver.url_for('/accounts')}"


@pytest.mark.parametrize("field", ["error", "detail"])
def test_an_error_field_is_shown_as_a_short_printable_line(httpserver, field):
    httpserver.expect_request("/accounts", method="POST").respond_with_json(
        {field: "database\n is \x1b[31mdown\u202e" + "x" * 5000}, status=503)
    with pytest.raises(AccountApiError) as raised:
        create(httpserver)
    message = raised.value.message
    assert message.startswith("Service Unavailable: database is [31mdown xxx")
    assert message.isprintable() and "\n" not in message
    assert len(message) <= len("Service Unavailable: ") + 200


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
    assert raised.value.code == "Timeout"


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
    assert (raised.value.code, raised.value.message) == ("HTTP500", "Internal Server Error")
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


# --- a hostile or broken server -------------------------------------------------------------------

@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_refused_not_followed(httpserver, status):
    httpserver.expect_request("/accounts", method="POST").respond_with_data(
        "", status=status, headers={"Location": "https://collector.example.net/steal"})
    httpserver.expect_request("/steal").respond_with_json(ANSWER, status=201)
    with pytest.raises(AccountApiError) as raised:
        create(httpserver)
    assert raised.value.code == f"HTTP{status}"
    assert "collector.example.net" in raised.value.message
    assert "not followed" in raised.value.message
    assert [request.path for request, _ in httpserver.log] == ["/accounts"]


def test_a_redirect_on_delete_is_refused(httpserver):
    httpserver.expect_request("/accounts/17", method="DELETE").respond_with_data(
        "", status=307, headers={"Location": httpserver.url_for("/elsewhere/17")})
    with pytest.raises(AccountApiError) as raised:
        delete_account(url=httpserver.url_for("/accounts"), token=TOKEN, account_id="17",
                       timeout=5)
    assert raised.value.code == "HTTP307"
    assert len(httpserver.log) == 1


def test_a_body_above_64_kib_is_refused_by_its_length(httpserver):
    httpserver.expect_request("/accounts", method="POST").respond_with_json(
        ANSWER | {"padding": "x" * MAX_BODY_BYTES}, status=201)
    with pytest.raises(AccountApiError) as raised:
        create(httpserver)
    assert raised.value.code == "ResponseTooLarge"


def test_a_body_of_exactly_64_kib_is_read(httpserver):
    body = json.dumps(ANSWER | {"padding": ""})
    body = body.replace('"padding": ""', '"padding": "' + "x" * (MAX_BODY_BYTES - len(body))
                        + '"')
    assert len(body) == MAX_BODY_BYTES
    httpserver.expect_request("/accounts", method="POST").respond_with_data(
        body, status=201, content_type="application/json")
    assert create(httpserver).account_id == "17"


def test_an_endless_body_without_length_is_not_read_whole(httpserver):
    sent = []

    def endless(_request):
        def chunks():
            for _ in range(16 * 1024):  # 256 MiB if anybody read it all
                sent.append(1)
                yield b"x" * 16384
        return Response(chunks(), status=201, content_type="application/json")

    httpserver.expect_request("/accounts", method="POST").respond_with_handler(endless)
    started = time.monotonic()
    with pytest.raises(AccountApiError) as raised:
        create(httpserver)
    assert raised.value.code == "ResponseTooLarge"
    assert time.monotonic() - started < 3
    assert len(sent) < 16 * 1024


def test_a_dripping_body_cannot_outlive_the_timeout(httpserver):
    def drip(_request):
        def chunks():
            for _ in range(40):
                yield b" "
                time.sleep(0.5)
        return Response(chunks(), status=201, content_type="application/json")

    httpserver.expect_request("/accounts", method="POST").respond_with_handler(drip)
    started = time.monotonic()
    with pytest.raises(AccountApiError) as raised:
        create_account(url=httpserver.url_for("/accounts"), token=TOKEN, name="n", host="h",
                       timeout=1.5)
    assert raised.value.code == "Timeout"
    assert time.monotonic() - started < 2.5


@pytest.fixture
def dripping_headers():
    """A raw server that sends its status line and headers a byte every 0.5 s."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            for byte in b"HTTP/1.1 201 Created\r\nX-Slow: " + b"y" * 100:
                if stop.wait(0.5):
                    return
                try:
                    connection.sendall(bytes([byte]))
                except OSError:
                    return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/accounts"
    stop.set()
    thread.join(5)
    listener.close()


def test_dripping_headers_cannot_outlive_the_timeout(dripping_headers):
    started = time.monotonic()
    with pytest.raises(AccountApiError) as raised:
        create_account(url=dripping_headers, token=TOKEN, name="n", host="h", timeout=1.5)
    assert raised.value.code == "Timeout"
    assert time.monotonic() - started < 2.5


@pytest.mark.parametrize("url", [
    "http://accounts.invalid/api",
    "http://0.0.0.0:1/api",
    "http://127.0.0.1.invalid/api",
    "http://{host}/api",
])
def test_plain_http_to_a_non_loopback_host_is_refused_before_sending(url):
    url = endpoint_for(url, name="n", host="n.dynamic.test")
    with pytest.raises(AccountApiError) as raised:
        create_account(url=url, token=TOKEN, name="n", host="h", timeout=5)
    assert raised.value.code == "InsecureUrl"
    assert "https" in raised.value.message
    with pytest.raises(AccountApiError) as raised:
        delete_account(url=url, token=TOKEN, account_id="1", timeout=5)
    assert raised.value.code == "InsecureUrl"


@pytest.mark.parametrize("host", ["127.0.0.1", "127.3.4.5", "[::1]", "localhost"])
def test_plain_http_to_loopback_is_allowed(host):
    port = free_port()
    with pytest.raises(AccountApiError) as raised:
        create_account(url=f"http://{host}:{port}/api", token=TOKEN, name="n", host="h",
                       timeout=5)
    # It was tried (and nobody listens there), not refused for being http.
    assert raised.value.code == "ConnectionError"


def test_is_loopback():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("LOCALHOST")
    assert not is_loopback("128.0.0.1") and not is_loopback("localhost.example.com")
