"""Issue 18, finding 6: the API checks a probe would write, one test (or a few) per point.

Size limits before parsing and authentication before the body; security headers; strict
``next``; no self role change and two admins for privileged grants; sessions and tokens end
on a password or role change, tokens expire and can be revoked; lockout per account and per
address with explicit trusted proxies; 422 (never 500, never an echo) for bad input.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import update
from typer.testing import CliRunner

from ouie.cli import app as cli_app
from ouie.compliance.roles import findings_for_hub
from ouie.config.compliance import ComplianceSettings
from ouie.config.hub import AuthSettings, HttpSettings, HubSettings
from ouie.core.timebase import utc_now
from ouie.hub import auth
from ouie.hub.api import create_app
from ouie.hub.auth import Role
from ouie.hub.db import ApiToken, UserChangeRequest
from ouie.hub.headers import tile_source
from ouie.hub.proxies import client_view
from ouie.hub.service import Hub
from ouie.web.app import create_hub_app
from ouie.web.routes import _safe_next
from tests.hub.helpers import register_sensors, sensor_grid, settings_for

PASSWORD = "correct horse battery"
NEW_PASSWORD = "a brand new passphrase"


def _hub_settings(url: str, **sections: Any) -> HubSettings:
    return settings_for(url).model_copy(update=sections)


@pytest.fixture
def env(sqlite_url: str) -> Iterator[dict[str, Any]]:
    hub = Hub(_hub_settings(sqlite_url, auth=AuthSettings(login_attempts_per_ip=8)))
    app = create_app(hub)
    with TestClient(app) as client:
        tokens: dict[str, str] = {}
        with hub.sessions() as session, session.begin():
            for name, role in [(r.value, r.value) for r in Role] + [("admin2", "admin")]:
                user = auth.create_user(session, name, PASSWORD, role, utc_now())
                tokens[name] = auth.create_api_token(session, user, "test", utc_now())
        sensor_tokens = register_sensors(hub, sensor_grid(2))
        yield {"hub": hub, "app": app, "client": client, "tokens": tokens, "sensors": sensor_tokens}
    hub.close()


def _bearer(env: dict[str, Any], name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {env['tokens'][name]}"}


def _login(client: TestClient, username: str, password: str = PASSWORD) -> Any:
    return client.post("/api/v1/auth/login", json={"username": username, "password": password})


def _role(hub: Hub, username: str) -> str:
    with hub.sessions() as session:
        user = auth.find_user(session, username)
        assert user is not None
        return user.role


# ----------------------------------------------------------------------------- size limits
def test_oversized_bodies_get_413_without_echo(env: dict[str, Any]) -> None:
    client: TestClient = env["client"]
    secret = "s3cret-" * 20_000  # 140 KB "password"
    response = client.post(
        "/api/v1/auth/login",
        content=b'{"username": "admin", "password": "' + secret.encode() + b'"}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert "s3cret" not in response.text and len(response.content) < 200
    # a chunked upload has no Content-Length: the gate counts the bytes as they come
    chunks = iter([b'{"username": "admin", "password": "'] + [b"x" * 8192] * 20 + [b'"}'])
    chunked = client.post(
        "/api/v1/auth/login", content=chunks, headers={"content-type": "application/json"}
    )
    assert chunked.status_code == 413
    # just under the limit is parsed as usual (and refused on its merits)
    small = client.post("/api/v1/auth/login", json={"username": "admin", "password": "x" * 300})
    assert small.status_code == 422


def test_60_mb_to_ingest_without_token_is_refused_at_once(env: dict[str, Any]) -> None:
    """The issue's probe: 60 MB posted to /ingest with no token."""
    client: TestClient = env["client"]
    body = b"{" + b" " * (60 * 1024 * 1024) + b"}"
    started = time.perf_counter()
    response = client.post(
        "/api/v1/ingest", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert time.perf_counter() - started < 2.0
    assert len(response.content) < 200


def test_the_limit_is_configurable(sqlite_url: str) -> None:
    hub = Hub(_hub_settings(sqlite_url, http=HttpSettings(max_body_bytes=2048)))
    with TestClient(create_app(hub)) as client:
        body = {"username": "admin", "password": "p" * 250, "pad": "x" * 2000}
        assert client.post("/api/v1/auth/login", json=body).status_code == 413
    hub.close()


def _asgi_post(
    app: FastAPI, path: str, headers: list[tuple[bytes, bytes]], chunks: list[bytes]
) -> tuple[int, bytes, int]:
    """POST through the ASGI interface: (status, body, how many body chunks the app read)."""
    read = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal read
        read += 1
        if read <= len(chunks):
            return {
                "type": "http.request",
                "body": chunks[read - 1],
                "more_body": read < len(chunks),
            }
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("192.0.2.7", 5555),
        "server": ("testserver", 80),
    }
    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, body, read


def test_authentication_comes_before_the_body_is_read(env: dict[str, Any]) -> None:
    app: FastAPI = env["app"]
    json_type = (b"content-type", b"application/json")
    chunk = b'{"kind": "event"' + b" " * 30_000 + b"}"
    # no token, a wrong token, a user's token on a sensor route: refused, body never read
    for headers in (
        [json_type],
        [json_type, (b"authorization", b"Bearer ouie_not_a_token")],
        [json_type, (b"authorization", f"Bearer {env['tokens']['admin']}".encode())],
    ):
        status, _, read = _asgi_post(app, "/api/v1/ingest", headers, [chunk])
        assert (status, read) == (401, 0)
    # a route for users: a viewer lacks the permission (403), still before the body
    viewer = (b"authorization", f"Bearer {env['tokens']['viewer']}".encode())
    status, _, read = _asgi_post(app, "/api/v1/users", [json_type, viewer], [b"{}"])
    assert (status, read) == (403, 0)
    # a real sensor streaming too much: read only up to the limit, then 413
    sensor = (b"authorization", f"Bearer {env['sensors']['s1']}".encode())
    many = [b" " * 16_384] * 40
    status, body, read = _asgi_post(app, "/api/v1/ingest", [json_type, sensor], many)
    assert status == 413 and read <= 65_536 // 16_384 + 1 and b"   " not in body


# ----------------------------------------------------------------------------- 422
def test_422_never_echoes_the_input(env: dict[str, Any]) -> None:
    client: TestClient = env["client"]
    secret = "hunter2-is-my-password-" * 12
    response = client.post("/api/v1/auth/login", json={"username": "admin", "password": secret})
    assert response.status_code == 422
    assert "hunter2" not in response.text
    detail = response.json()["detail"]
    assert detail[0]["loc"] == ["body", "password"] and "input" not in detail[0]
    broken = client.post(
        "/api/v1/auth/login",
        content=b'{"username": "admin", "password": "hunter2',
        headers={"content-type": "application/json"},
    )
    assert broken.status_code == 422 and "hunter2" not in broken.text


@pytest.mark.parametrize(
    "since",
    [
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        "0001-01-01T00:00:00",
        "9999-12-31T23:59:59",
    ],
)
@pytest.mark.parametrize(
    "path", ["/api/v1/incidents", "/api/v1/detections", "/api/v1/stats/precision"]
)
def test_extreme_dates_are_422_not_500(env: dict[str, Any], path: str, since: str) -> None:
    response = env["client"].get(path, params={"since": since}, headers=_bearer(env, "admin"))
    assert response.status_code == 422, response.text


def test_console_date_filters_out_of_range_are_ignored(sqlite_url: str) -> None:
    hub = Hub(settings_for(sqlite_url))
    with TestClient(create_hub_app(hub)) as client:
        with hub.sessions() as session, session.begin():
            user = auth.create_user(session, "op", PASSWORD, "operator", utc_now())
            token = auth.create_api_token(session, user, "t", utc_now())
        response = client.get(
            "/console/incidents",
            params={"since": "0001-01-01", "until": "9999-12-31"},
            headers={"Authorization": f"Bearer {token}", "accept": "text/html"},
        )
        assert response.status_code == 200
    hub.close()


# ----------------------------------------------------------------------------- headers
def test_security_headers_on_api_and_console(sqlite_url: str) -> None:
    hub = Hub(settings_for(sqlite_url))
    hub.prepare()
    app = create_hub_app(hub, manage_hub=False)
    client = TestClient(app)
    for path in ("/api/v1/health", "/login", "/public", "/api/v1/nothing-here"):
        headers = client.get(path, headers={"accept": "text/html"}).headers
        csp = headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp, path
        assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "same-origin"
        assert "microphone=()" in headers["permissions-policy"]
        assert "strict-transport-security" not in headers  # plain HTTP: no HSTS
    # a refusal by the gate carries them too
    refused = client.post("/api/v1/ingest", content=b"x" * 70_000)
    assert refused.status_code == 413 and refused.headers["x-frame-options"] == "DENY"
    # a spoofed X-Forwarded-Proto from an untrusted peer does not turn HSTS on
    spoofed = client.get("/api/v1/health", headers={"x-forwarded-proto": "https"})
    assert "strict-transport-security" not in spoofed.headers
    tls = TestClient(app, base_url="https://testserver")
    assert tls.get("/api/v1/health").headers["strict-transport-security"].startswith("max-age=")
    hub.close()


def test_hsts_and_client_address_from_a_trusted_proxy_only(sqlite_url: str) -> None:
    http = HttpSettings(trusted_proxies=[ipaddress.ip_network("10.0.0.0/8")])
    hub = Hub(_hub_settings(sqlite_url, http=http))
    hub.prepare()
    proxied = TestClient(create_app(hub, manage_hub=False), client=("10.1.2.3", 4444))
    headers = {"x-forwarded-proto": "https", "x-forwarded-for": "198.51.100.9"}
    assert "strict-transport-security" in proxied.get("/api/v1/health", headers=headers).headers
    hub.close()


def test_client_view_believes_forwarded_headers_only_from_trusted_proxies() -> None:
    proxies = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1/128")]

    def scope(peer: str, xff: str | None = None, proto: str | None = None) -> dict[str, Any]:
        headers = []
        if xff is not None:
            headers.append((b"x-forwarded-for", xff.encode()))
        if proto is not None:
            headers.append((b"x-forwarded-proto", proto.encode()))
        return {"client": (peer, 1), "scheme": "http", "headers": headers}

    # nothing trusted by default, loopback included
    assert client_view(scope("127.0.0.1", "203.0.113.1"), []).address == "127.0.0.1"
    assert client_view(scope("127.0.0.1", "203.0.113.1", "https"), []).https is False
    # an untrusted peer cannot claim an address
    assert client_view(scope("192.0.2.1", "203.0.113.1"), proxies).address == "192.0.2.1"
    # through trusted proxies: the rightmost address that is not a proxy
    view = client_view(scope("10.0.0.2", "6.6.6.6, 203.0.113.1, 10.0.0.9", "https"), proxies)
    assert view.address == "203.0.113.1" and view.https
    # garbage stops the walk at the last trusted hop
    assert client_view(scope("10.0.0.2", "203.0.113.1, not-an-ip"), proxies).address == "10.0.0.2"
    assert client_view(scope("::1", "2001:db8::5"), proxies).address == "2001:db8::5"


def test_tile_server_is_allowed_for_images_only() -> None:
    assert tile_source("https://{s}.tile.example.org/{z}/{x}/{y}.png") == (
        "https://*.tile.example.org"
    )
    assert tile_source("javascript:alert(1)") is None
    assert tile_source(None) is None


# ----------------------------------------------------------------------------- next
@pytest.mark.parametrize(
    "target",
    [
        "/%5Cevil.example/phish",
        "/\\evil.example/phish",
        "//evil.example",
        "///evil.example",
        "/%2F%2Fevil.example",
        "https://evil.example/",
        "javascript:alert(1)",
        "/console/../api/v1/users",
        "/console//evil.example",
        "/console\tx",
        "/api/v1/auth/logout",
        "evil.example",
    ],
)
def test_next_never_leaves_the_console(target: str) -> None:
    assert _safe_next(target) == "/console/"


def test_next_keeps_console_paths() -> None:
    for target in ("/console/", "/console/incidents?label=gunshot&state=open", "/public"):
        assert _safe_next(target) == target


def test_login_page_refuses_the_issues_open_redirect(sqlite_url: str) -> None:
    hub = Hub(settings_for(sqlite_url))
    with TestClient(create_hub_app(hub)) as client:
        page = client.get("/login?next=/%5Cevil.example/phish", headers={"accept": "text/html"})
        assert 'data-next="/console/"' in page.text and 'data-next="/%5C' not in page.text
        with hub.sessions() as session, session.begin():
            auth.create_user(session, "op", PASSWORD, "operator", utc_now())
        assert _login(client, "op").status_code == 200
        logged_in = client.get("/login?next=/%5Cevil.example/phish", follow_redirects=False)
        assert logged_in.headers["location"] == "/console/"
    hub.close()


# ----------------------------------------------------------------------------- roles
def test_nobody_changes_their_own_role(env: dict[str, Any]) -> None:
    """The issue's escalation: an admin makes itself supervisor to approve drone flights."""
    client: TestClient = env["client"]
    response = client.patch(
        "/api/v1/users/admin", json={"role": "supervisor"}, headers=_bearer(env, "admin")
    )
    assert response.status_code == 403
    assert _role(env["hub"], "admin") == "admin"
    self_off = client.patch(
        "/api/v1/users/admin", json={"active": False}, headers=_bearer(env, "admin")
    )
    assert self_off.status_code == 403
    # sending one's own current role (the console does with every save) is no change
    same = client.patch(
        "/api/v1/users/admin", json={"role": "admin"}, headers=_bearer(env, "admin")
    )
    assert same.status_code == 200


def test_granting_supervisor_needs_a_second_admin(env: dict[str, Any]) -> None:
    client: TestClient = env["client"]
    hub: Hub = env["hub"]
    asked = client.patch(
        "/api/v1/users/operator", json={"role": "supervisor"}, headers=_bearer(env, "admin")
    )
    assert asked.status_code == 202, asked.text
    request = asked.json()
    assert request["state"] == "pending" and request["role"] == "supervisor"
    assert _role(hub, "operator") == "operator"  # nothing changed yet
    listed = client.get("/api/v1/users/changes", headers=_bearer(env, "admin2")).json()
    assert [c["id"] for c in listed["changes"]] == [request["id"]]
    # the requester cannot confirm its own request; the target cannot confirm either
    url = f"/api/v1/users/changes/{request['id']}/confirm"
    assert client.post(url, headers=_bearer(env, "admin")).status_code == 403
    assert client.post(url, headers=_bearer(env, "supervisor")).status_code == 403
    confirmed = client.post(url, headers=_bearer(env, "admin2"))
    assert confirmed.status_code == 200 and confirmed.json()["role"] == "supervisor"
    assert _role(hub, "operator") == "supervisor"
    assert client.post(url, headers=_bearer(env, "admin2")).status_code == 409  # done once
    actions = [
        e["action"]
        for e in client.get("/api/v1/audit", headers=_bearer(env, "admin")).json()["entries"]
    ]
    assert "user.change_requested" in actions and "user.change_confirmed" in actions


def test_creating_an_admin_needs_a_second_admin_and_can_be_refused(env: dict[str, Any]) -> None:
    client: TestClient = env["client"]
    body = {"username": "mallory", "password": "a long password", "role": "admin"}
    asked = client.post("/api/v1/users", json=body, headers=_bearer(env, "admin"))
    assert asked.status_code == 202 and asked.json()["kind"] == "create"
    assert "password" not in asked.text.replace("password_change", "")
    with env["hub"].sessions() as session:
        assert auth.find_user(session, "mallory") is None
    change = asked.json()["id"]
    cancelled = client.post(
        f"/api/v1/users/changes/{change}/cancel", headers=_bearer(env, "admin2")
    )
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    again = client.post(f"/api/v1/users/changes/{change}/confirm", headers=_bearer(env, "admin2"))
    assert again.status_code == 409
    # a viewer is created at once
    viewer = {"username": "visitor", "password": "a long password", "role": "viewer"}
    assert (
        client.post("/api/v1/users", json=viewer, headers=_bearer(env, "admin")).status_code == 201
    )


def test_one_admin_cannot_reset_a_supervisors_password(env: dict[str, Any]) -> None:
    client: TestClient = env["client"]
    asked = client.patch(
        "/api/v1/users/supervisor", json={"password": NEW_PASSWORD}, headers=_bearer(env, "admin")
    )
    assert asked.status_code == 202 and asked.json()["password_change"] is True
    assert NEW_PASSWORD not in asked.text
    # the supervisor's password is unchanged until a second admin confirms
    assert _login(client, "supervisor").status_code == 200
    assert _login(client, "supervisor", NEW_PASSWORD).status_code == 401
    url = f"/api/v1/users/changes/{asked.json()['id']}/confirm"
    assert client.post(url, headers=_bearer(env, "admin2")).status_code == 200
    assert _login(client, "supervisor", NEW_PASSWORD).status_code == 200
    assert _login(client, "supervisor").status_code == 401


def test_pending_changes_expire(env: dict[str, Any]) -> None:
    client: TestClient = env["client"]
    asked = client.patch(
        "/api/v1/users/viewer", json={"role": "admin"}, headers=_bearer(env, "admin")
    ).json()
    with env["hub"].sessions() as session, session.begin():
        session.execute(
            update(UserChangeRequest).values(expires_at=utc_now() - timedelta(seconds=1))
        )
    url = f"/api/v1/users/changes/{asked['id']}/confirm"
    assert client.post(url, headers=_bearer(env, "admin2")).status_code == 410
    assert _role(env["hub"], "viewer") == "viewer"


# ----------------------------------------------------------------------------- sessions
def test_password_and_role_changes_end_sessions_and_tokens(env: dict[str, Any]) -> None:
    hub: Hub = env["hub"]
    app = env["app"]
    operator = TestClient(app)  # a second browser (the app is already started)
    assert _login(operator, "operator").status_code == 200
    assert operator.get("/api/v1/auth/me").status_code == 200
    token = _bearer(env, "operator")
    changed = env["client"].patch(
        "/api/v1/users/operator", json={"password": NEW_PASSWORD}, headers=_bearer(env, "admin")
    )
    assert changed.status_code == 200
    assert operator.get("/api/v1/auth/me").status_code == 401  # the session ended
    assert env["client"].get("/api/v1/auth/me", headers=token).status_code == 401
    # a demotion, too
    auditor = TestClient(app)
    assert _login(auditor, "auditor").status_code == 200
    demoted = env["client"].patch(
        "/api/v1/users/auditor", json={"role": "viewer"}, headers=_bearer(env, "admin")
    )
    assert demoted.status_code == 200
    assert auditor.get("/api/v1/auth/me").status_code == 401
    assert env["client"].get("/api/v1/auth/me", headers=_bearer(env, "auditor")).status_code == 401
    entries = env["client"].get("/api/v1/audit", headers=_bearer(env, "admin")).json()["entries"]
    changed_entry = [e for e in entries if e["action"] == "user.changed"][-1]
    assert changed_entry["detail"]["sessions_ended"] == 1
    assert changed_entry["detail"]["tokens_revoked"] == 1
    with hub.sessions() as session:
        assert session.query(ApiToken).filter(ApiToken.revoked_at.is_(None)).count() == 4


def test_tokens_expire_and_can_be_revoked(env: dict[str, Any]) -> None:
    client: TestClient = env["client"]
    viewer = _bearer(env, "viewer")
    made = client.post(
        "/api/v1/auth/tokens", json={"name": "script", "ttl_days": 7}, headers=viewer
    )
    assert made.status_code == 201
    new = {"Authorization": f"Bearer {made.json()['token']}"}
    assert client.get("/api/v1/auth/me", headers=new).status_code == 200
    listed = client.get("/api/v1/auth/tokens", headers=viewer).json()["tokens"]
    script = next(t for t in listed if t["name"] == "script")
    assert script["expires_at"] > utc_now().isoformat() and script["revoked_at"] is None
    # someone else's token cannot be revoked (unless one is an admin)
    other = client.delete(f"/api/v1/auth/tokens/{script['id']}", headers=_bearer(env, "operator"))
    assert other.status_code == 404
    revoked = client.delete(f"/api/v1/auth/tokens/{script['id']}", headers=viewer)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert client.get("/api/v1/auth/me", headers=new).status_code == 401
    # expiry: a token past its date is refused
    with env["hub"].sessions() as session, session.begin():
        session.execute(update(ApiToken).values(expires_at=utc_now() - timedelta(seconds=1)))
    assert client.get("/api/v1/auth/me", headers=viewer).status_code == 401


def test_admin_ends_all_credentials_of_a_user(env: dict[str, Any]) -> None:
    client: TestClient = env["client"]
    response = client.post("/api/v1/users/operator/revoke", headers=_bearer(env, "admin"))
    assert response.status_code == 200 and response.json() == {"sessions": 0, "tokens": 1}
    assert client.get("/api/v1/auth/me", headers=_bearer(env, "operator")).status_code == 401


def test_cli_lists_and_revokes_tokens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OUIE_DATABASE_URL", raising=False)
    config = tmp_path / "hub.yaml"
    config.write_text(f"database:\n  url: sqlite:///{tmp_path / 'hub.sqlite3'}\n", "utf-8")
    runner = CliRunner()
    added = runner.invoke(
        cli_app,
        [
            "user",
            "add",
            "ops",
            "--role",
            "operator",
            "-c",
            str(config),
            "--token",
            "--password-stdin",
        ],
        input="a long password\n",
    )
    assert added.exit_code == 0, added.output
    listed = runner.invoke(cli_app, ["user", "tokens", "ops", "--config", str(config)])
    assert (
        listed.exit_code == 0 and "\tcli\texpires " in listed.output and "active" in listed.output
    )
    token_id = listed.output.split("\t")[0]
    one = runner.invoke(
        cli_app, ["user", "revoke", "ops", "--token-id", token_id, "--config", str(config)]
    )
    assert one.exit_code == 0 and "revoked" in one.output
    assert (
        "revoked 20" in runner.invoke(cli_app, ["user", "tokens", "ops", "-c", str(config)]).output
    )
    everything = runner.invoke(cli_app, ["user", "revoke", "ops", "--config", str(config)])
    assert everything.exit_code == 0 and "0 token(s) revoked" in everything.output


# ----------------------------------------------------------------------------- lockout
def test_lockout_per_account_across_addresses(env: dict[str, Any]) -> None:
    """Guesses spread over many addresses still lock the account."""
    app = env["app"]
    for i in range(5):
        attacker = TestClient(app, client=(f"198.51.100.{i + 1}", 1000))
        assert _login(attacker, "supervisor", "wrong guess").status_code == 401
    other = TestClient(app, client=("198.51.100.77", 1000))
    assert _login(other, "supervisor").status_code == 429  # even the right password
    assert _login(other, "operator").status_code == 200  # other accounts are not locked


def test_lockout_per_address_across_accounts(env: dict[str, Any]) -> None:
    """One address cannot try many accounts (login_attempts_per_ip: 8 here)."""
    app = env["app"]
    attacker = TestClient(app, client=("203.0.113.50", 1000))
    for i in range(8):
        assert _login(attacker, f"nobody{i}", "wrong guess").status_code == 401
    assert _login(attacker, "viewer").status_code == 429
    elsewhere = TestClient(app, client=("203.0.113.51", 1000))
    assert _login(elsewhere, "viewer").status_code == 200


def test_forwarded_for_from_loopback_is_not_believed_by_default(env: dict[str, Any]) -> None:
    local = TestClient(env["app"], client=("127.0.0.1", 1000))
    for i in range(8):
        spoofed = {"x-forwarded-for": f"192.0.2.{i + 1}"}
        response = local.post(
            "/api/v1/auth/login",
            json={"username": f"nobody{i}", "password": "wrong guess"},
            headers=spoofed,
        )
        assert response.status_code == 401
    # all eight counted against 127.0.0.1, whatever the header said
    assert _login(local, "viewer").status_code == 429


def test_forwarded_for_from_a_trusted_proxy_is_believed(sqlite_url: str) -> None:
    settings = _hub_settings(
        sqlite_url,
        auth=AuthSettings(login_attempts_per_ip=3),
        http=HttpSettings(trusted_proxies=[ipaddress.ip_network("127.0.0.1/32")]),
    )
    hub = Hub(settings)
    with TestClient(create_app(hub), client=("127.0.0.1", 1000)) as proxy:
        with hub.sessions() as session, session.begin():
            auth.create_user(session, "op", PASSWORD, "operator", utc_now())
        for i in range(3):
            headers = {"x-forwarded-for": "192.0.2.1"}
            body = {"username": f"nobody{i}", "password": "wrong guess"}
            assert proxy.post("/api/v1/auth/login", json=body, headers=headers).status_code == 401
        blocked = proxy.post(
            "/api/v1/auth/login",
            json={"username": "op", "password": PASSWORD},
            headers={"x-forwarded-for": "192.0.2.1"},
        )
        assert blocked.status_code == 429
        other = proxy.post(
            "/api/v1/auth/login",
            json={"username": "op", "password": PASSWORD},
            headers={"x-forwarded-for": "192.0.2.2"},
        )
        assert other.status_code == 200
    hub.close()


# ----------------------------------------------------------------------------- cookies
def test_session_cookie_is_secure_over_https_and_when_configured(sqlite_url: str) -> None:
    hub = Hub(settings_for(sqlite_url))
    hub.prepare()
    with hub.sessions() as session, session.begin():
        auth.create_user(session, "op", PASSWORD, "operator", utc_now())
    app = create_app(hub, manage_hub=False)
    plain, tls = TestClient(app), TestClient(app, base_url="https://testserver")
    assert "secure" not in _login(plain, "op").headers["set-cookie"].lower()
    assert "secure" in _login(tls, "op").headers["set-cookie"].lower()
    hub.close()
    forced = Hub(_hub_settings(sqlite_url, auth=AuthSettings(cookie_secure=True)))
    forced.prepare()
    forced_plain = TestClient(create_app(forced, manage_hub=False))
    assert "secure" in _login(forced_plain, "op").headers["set-cookie"].lower()
    forced.close()


def test_check_refuses_insecure_cookies_in_production() -> None:
    def cookie_findings(**auth_settings: Any) -> list[str]:
        settings = HubSettings(
            auth=AuthSettings(**auth_settings), compliance=ComplianceSettings(production=True)
        )
        return [
            f.message
            for f in findings_for_hub(settings)
            if f.rule == "http-insecure" and f.where == "auth.cookie_secure"
        ]

    assert cookie_findings() != []  # the default (secure only over HTTPS) is not enough
    assert cookie_findings(cookie_secure=False) != []  # loopback is no exemption
    assert cookie_findings(cookie_secure=True) == []
