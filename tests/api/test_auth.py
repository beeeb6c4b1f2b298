"""Bearer tokens and roles: 401 without a valid token, 403 for a role that may not act; the credential is checked
before anything reads the request body, and a body over the limit is refused as it comes in."""

from __future__ import annotations

import json
import select
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from recovery.api.auth import hash_token, identify
from recovery.http import HttpServer
from tests.api.conftest import ApiFactory, api_settings, token_of
from tests.conftest import free_ports

# (method, path, the least role allowed)
ENDPOINTS = [
    ("get", "/api/me", "frontline"),
    ("get", "/api/tasks", "frontline"),
    ("get", "/api/tasks/t1", "frontline"),
    ("post", "/api/tasks/t1/claim", "frontline"),
    ("post", "/api/tasks/t1/release", "frontline"),
    ("post", "/api/tasks/t1/complete", "frontline"),
    ("get", "/api/gestures", "frontline"),
    ("get", "/api/gestures/g1", "frontline"),
    ("post", "/api/gestures/g1/approve", "ops"),
    ("post", "/api/gestures/g1/reject", "ops"),
    ("get", "/api/customers/C1/timeline", "frontline"),
    ("get", "/api/cases", "frontline"),
    ("get", "/api/cases/c1", "frontline"),
    ("post", "/api/cases/c1/claim", "frontline"),
    ("post", "/api/cases/c1/release", "frontline"),
    ("post", "/api/cases/c1/complete", "frontline"),
    ("get", "/api/customers/at-risk", "frontline"),
    ("get", "/api/customers/C1/snoozes", "frontline"),
    ("post", "/api/customers/C1/snoozes", "ops"),
    ("get", "/api/playbooks", "ops"),
    ("post", "/api/playbooks/validate", "ops"),
    ("post", "/api/playbooks/reload", "admin"),
    ("get", "/api/audit", "admin"),
]
WHO = {"frontline": "ann", "ops": "olga", "admin": "ada"}
RANK = ["frontline", "ops", "admin"]


@pytest.mark.parametrize(("method", "path", "least"), ENDPOINTS)
def test_each_role_may_do_what_its_rank_allows(api_factory: ApiFactory, method: str, path: str, least: str) -> None:
    api = api_factory()
    for role, name in WHO.items():
        response = getattr(api.client, method)(path, headers=api.headers(name))
        allowed = RANK.index(role) >= RANK.index(least)
        assert (response.status_code != 403) == allowed, (role, response.status_code, response.text)
        if not allowed:
            assert f"'{name}' has role {role}; this needs {least}" in response.json()["detail"]


@pytest.mark.parametrize(("method", "path", "least"), ENDPOINTS)
@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong-token", "Basic YW5uOng=", f"Bearer {token_of('nobody')}"]
)
def test_no_valid_token_is_401(
    api_factory: ApiFactory, method: str, path: str, least: str, authorization: str | None
) -> None:
    api = api_factory()
    headers = {"Authorization": authorization} if authorization else {}
    response = getattr(api.client, method)(path, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_tokens_are_kept_hashed() -> None:
    settings = api_settings()
    assert all(token_of(t.name) not in t.model_dump_json() for t in settings.api_tokens)
    assert settings.api_tokens[0].token_sha256 == hash_token(token_of("ann"))
    caller = identify(settings, token_of("olga"))
    assert caller is not None and (caller.name, caller.role) == ("olga", "ops")
    assert identify(settings, "") is None


@pytest.mark.parametrize("api_factory", ["memory"], indirect=True)
def test_health_metrics_openapi_and_the_pages_gets_need_no_token(api_factory: ApiFactory) -> None:
    client = api_factory().client
    for path in ("/healthz", "/metrics", "/openapi.json", "/", "/tasks/t1"):
        assert client.get(path).status_code == 200, path
    assert client.get("/readyz").status_code == 503  # open, and not ready: nothing runs behind this app
    assert client.post("/login", data={"token": "wrong"}).status_code == 401  # the sign-in form is reached


def test_me(api_factory: ApiFactory) -> None:
    assert api_factory().get("/api/me", who="ada").json() == {"name": "ada", "role": "admin"}


# ------------------------------------------------------------------------------------------ before the body
# A real server and a raw socket: the request announces a body far bigger than what is sent. An answer that arrives
# at all shows the server did not wait for the rest; `Spy` counts the body bytes the app pulled from the server.

ANNOUNCED = 300 * 1024 * 1024
SENT = 4096


class Spy:
    """An ASGI wrapper counting the request body bytes the app it wraps received, and keeping what it raised to the
    server (which the server would log as an error)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.body_bytes = 0
        self.errors: list[BaseException] = []
        self.finished = threading.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def counted() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                self.body_bytes += len(message.get("body", b""))
            return message

        try:
            await self.app(scope, counted, send)
        except BaseException as exc:
            self.errors.append(exc)
            raise
        finally:
            self.finished.set()


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    closed: bool
    """The server closed the connection after its answer (it will not read the rest of the body)."""

    def json(self) -> Any:
        return json.loads(self.body)


def read_answer(sock: socket.socket) -> Answer:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the server closed the connection without an answer: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, value in (line.split(":", 1) for line in lines)}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection in the middle of its answer"
        body += chunk
    try:
        closed = sock.recv(1) == b""
    except ConnectionResetError:
        closed = True
    return Answer(int(status_line.split()[1]), headers, body[:length], closed)


def exchange(port: int, head: list[str], body: bytes, timeout_s: float = 10) -> Answer:
    """Send the request line and headers `head`, then `body`, and read the answer; the socket's timeout (an error)
    means the server was waiting for more of the body."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        sock.sendall(("\r\n".join([*head, f"Host: 127.0.0.1:{port}", "", ""])).encode() + body)
        return read_answer(sock)


@pytest.fixture
def served(api_factory: ApiFactory) -> Iterator[Callable[..., tuple[int, Spy]]]:
    """A real server over an API (settings as given): its port and the spy between the server and the app."""
    servers: list[HttpServer] = []

    def serve(**settings: Any) -> tuple[int, Spy]:
        spy = Spy(api_factory(**settings).client.app)
        port = free_ports(1)[0]
        server = HttpServer(spy, port, host="127.0.0.1")  # type: ignore[arg-type]
        server.start()
        servers.append(server)
        return port, spy

    yield serve
    for server in servers:
        server.stop()


class TestBeforeTheBody:
    @pytest.mark.parametrize(
        ("path", "content_type", "credential"),
        [("/api/tasks/x/complete", "application/json", None),
         ("/api/tasks/x/complete", "application/json", "Authorization: Bearer wrong-token"),
         ("/api/playbooks/validate", "application/yaml", None),
         ("/tasks/x/complete", "application/x-www-form-urlencoded", None),
         ("/tasks/x/claim", "application/x-www-form-urlencoded", "Cookie: recovery_token=wrong-token"),
         ("/logout", "application/x-www-form-urlencoded", None)],
    )  # fmt: skip
    @pytest.mark.parametrize("api_factory", ["sqlite"], indirect=True)
    def test_no_valid_credential_is_401_before_the_body_is_read(
        self, served: Callable[..., tuple[int, Spy]], path: str, content_type: str, credential: str | None
    ) -> None:
        port, spy = served()
        head = [f"POST {path} HTTP/1.1", f"Content-Type: {content_type}", f"Content-Length: {ANNOUNCED}"]
        answer = exchange(port, head + ([credential] if credential else []), b"x" * SENT)
        assert answer.status == 401
        if path.startswith("/api/"):
            assert answer.headers["www-authenticate"] == "Bearer"
            assert "bearer token" in answer.json()["detail"]
        else:
            assert b"Sign in again." in answer.body
        assert answer.closed
        assert spy.body_bytes == 0

    @pytest.mark.parametrize("api_factory", ["sqlite"], indirect=True)
    def test_a_body_announced_over_the_limit_is_413_at_once(self, served: Callable[..., tuple[int, Spy]]) -> None:
        port, spy = served()
        head = [
            "POST /api/tasks/x/complete HTTP/1.1",
            "Content-Type: application/json",
            f"Content-Length: {ANNOUNCED}",
            f"Authorization: Bearer {token_of('ann')}",
        ]
        answer = exchange(port, head, b"x" * SENT)
        assert answer.status == 413
        detail = answer.json()["detail"]
        assert "1048576 bytes" in detail and "http_max_body_bytes" in detail and str(ANNOUNCED) in detail
        assert answer.closed
        assert spy.body_bytes == 0

    # The body read by the route itself (validate), by FastAPI (a JSON body), by FastAPI (a form).
    @pytest.mark.parametrize(
        ("path", "content_type", "credential"),
        [("/api/playbooks/validate", "application/yaml", f"Authorization: Bearer {token_of('olga')}"),
         ("/api/tasks/x/complete", "application/json", f"Authorization: Bearer {token_of('ann')}"),
         ("/tasks/x/complete", "application/x-www-form-urlencoded", f"Cookie: recovery_token={token_of('ann')}")],
    )  # fmt: skip
    @pytest.mark.parametrize("api_factory", ["sqlite"], indirect=True)
    def test_a_chunked_body_that_grows_past_the_limit_is_413(
        self,
        served: Callable[..., tuple[int, Spy]],
        path: str,
        content_type: str,
        credential: str,
    ) -> None:
        limit, piece = 1024 * 1024, b"y" * 64 * 1024  # the default limit
        port, spy = served()
        head = [f"POST {path} HTTP/1.1", f"Content-Type: {content_type}", "Transfer-Encoding: chunked", credential]
        chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
        sent = 0
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(("\r\n".join([*head, f"Host: 127.0.0.1:{port}", "", ""])).encode())
            # Up to 64 MiB, never ended: the answer must come while the body still streams in.
            for _ in range(1024):
                try:
                    sock.sendall(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    break
                sent += len(piece)
                if select.select([sock], [], [], 0.01)[0]:
                    break
            answer = read_answer(sock)
        assert answer.status == 413
        assert f"{limit} bytes" in answer.json()["detail"]
        assert sent < 4 * 1024 * 1024
        # The app pulled what uvicorn had buffered when the count passed the limit (at most its 64 KiB buffer more).
        assert limit < spy.body_bytes <= limit + 64 * 1024 + len(piece)
        assert spy.finished.wait(10)
        assert spy.errors == []  # what the app made of its cut-off body is moot: nothing for the server to log
