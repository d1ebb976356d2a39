"""Logging in and out, who am I, personal API tokens, and user administration.

Changes to users go through ``ouie.hub.user_admin`` (no self role change; granting supervisor
or admin waits for a second admin, answered 202 with the pending request; a role or password
change ends the user's sessions and tokens). Pending changes are confirmed in
``routers/user_changes.py``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from pydantic import Field

from ouie.core.model_base import StrictModel
from ouie.core.timebase import utc_now
from ouie.hub import audit, auth, user_admin
from ouie.hub.auth import Perm, Role
from ouie.hub.db import ApiToken, User
from ouie.hub.routers.deps import (
    API_PREFIX,
    SESSION_COOKIE,
    Caller,
    HubDep,
    LimiterDep,
    access,
    client_of,
)
from ouie.hub.schemas import TokenView, UserChangeView, UserView

router = APIRouter(prefix=API_PREFIX, tags=["users"])


# ----------------------------------------------------------------------------- bodies
class LoginBody(StrictModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class TokenBody(StrictModel):
    name: str = Field(min_length=1, max_length=100)
    ttl_days: int | None = Field(
        default=None, ge=1, le=3650, description="lifetime; default auth.token_ttl_days"
    )


class UserBody(StrictModel):
    username: str = Field(pattern=r"^[A-Za-z0-9_.@-]{1,64}$")
    password: str = Field(min_length=8, max_length=256)
    role: Role


class UserPatch(StrictModel):
    role: Role | None = None
    active: bool | None = None
    password: str | None = Field(default=None, min_length=8, max_length=256)


# ----------------------------------------------------------------------------- responses
class LoggedIn(StrictModel):
    username: str
    role: Role
    csrf_token: str = Field(description="sent back in X-CSRF-Token with each cookie change")


class LoggedOut(StrictModel):
    status: Literal["logged out"]


class Me(StrictModel):
    username: str
    role: Role
    permissions: list[Perm]
    csrf_token: str | None = Field(description="null for API tokens")


class NewToken(StrictModel):
    token: str = Field(description="shown once")
    name: str
    expires_at: str = Field(description="ISO 8601, UTC")


class TokenList(StrictModel):
    tokens: list[TokenView]


class UserList(StrictModel):
    users: list[UserView]


class CredentialsEnded(StrictModel):
    sessions: int = Field(description="console sessions ended")
    tokens: int = Field(description="API tokens revoked")


def _pending(outcome: user_admin.Pending) -> JSONResponse:
    # 202: nothing changed yet; a second admin confirms in /users/changes/{id}/confirm
    view = UserChangeView.of(outcome.request)
    return JSONResponse(view.model_dump(mode="json"), status_code=202)


PENDING_RESPONSE: dict[int | str, dict[str, Any]] = {
    202: {"model": UserChangeView, "description": "waits for a second admin's confirmation"}
}


# ----------------------------------------------------------------------------- auth
@router.post("/auth/login", response_model=LoggedIn, **access("public"))
def login(
    body: LoginBody, request: Request, response: Response, hub: HubDep, limiter: LimiterDep
) -> LoggedIn:
    client = client_of(hub, request)
    keys = (f"user:{body.username}", f"ip:{client.address}")
    if limiter.blocked(*keys):
        raise HTTPException(429, "too many failed logins; try again later")
    settings = hub.settings.auth
    with hub.sessions() as session, session.begin():
        user = auth.authenticate_password(session, body.username, body.password)
        if user is None:
            limiter.failed(*keys)
            name = body.username[:64]
            audit.record(session, audit.AuditEvent(name, "auth.login_failed", "user", name))
            result = None
        else:
            limiter.succeeded(keys[0])
            token, csrf = auth.start_session(session, user, settings.session_ttl_s, utc_now())
            audit.record(
                session, audit.AuditEvent(user.username, "auth.login", "user", user.username)
            )
            result = LoggedIn(username=user.username, role=Role(user.role), csrf_token=csrf)
    if result is None:  # raised after the commit, so the failed attempt stays audited
        raise HTTPException(401, "wrong user name or password")
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.session_ttl_s,
        httponly=True,
        samesite="strict",
        # unset: Secure whenever the browser came over HTTPS; production requires true
        secure=settings.cookie_secure if settings.cookie_secure is not None else client.https,
        path="/",
    )
    return result


@router.post("/auth/logout", response_model=LoggedOut, **access("authenticated"))
def logout(request: Request, response: Response, hub: HubDep, who: Caller) -> LoggedOut:
    cookie = request.cookies.get(SESSION_COOKIE)
    with hub.sessions() as session, session.begin():
        if cookie:
            auth.end_session(session, cookie)
        audit.record(session, audit.AuditEvent(who.username, "auth.logout", "user", who.username))
    response.delete_cookie(SESSION_COOKIE, path="/")
    return LoggedOut(status="logged out")


@router.get("/auth/me", response_model=Me, **access("authenticated"))
def me(who: Caller) -> Me:
    return Me(
        username=who.username,
        role=who.role,
        permissions=sorted(auth.PERMISSIONS[who.role]),
        csrf_token=who.csrf_token,
    )


@router.post("/auth/tokens", status_code=201, response_model=NewToken, **access(Perm.TOKENS_OWN))
def create_token(body: TokenBody, hub: HubDep, who: Caller) -> NewToken:
    days = body.ttl_days or hub.settings.auth.token_ttl_days
    now = utc_now()
    with hub.sessions() as session, session.begin():
        user = session.get(User, who.user_id)
        if user is None:  # deleted between the guard and here
            raise HTTPException(401, "authentication required")
        token = auth.create_api_token(session, user, body.name, now, timedelta(days=days))
        audit.record(
            session,
            audit.AuditEvent(
                who.username,
                "auth.token_created",
                "user",
                who.username,
                {"name": body.name, "ttl_days": days},
            ),
        )
    return NewToken(
        token=token, name=body.name, expires_at=(now + timedelta(days=days)).isoformat()
    )


@router.get("/auth/tokens", response_model=TokenList, **access(Perm.TOKENS_OWN))
def list_tokens(hub: HubDep, who: Caller) -> TokenList:
    """The caller's own API tokens, revoked and expired ones included."""
    with hub.sessions() as session:
        return TokenList(
            tokens=[TokenView.of(t) for t in auth.list_api_tokens(session, who.user_id)]
        )


@router.delete("/auth/tokens/{token_id}", response_model=TokenView, **access(Perm.TOKENS_OWN))
def revoke_token(token_id: int, hub: HubDep, who: Caller) -> TokenView:
    """Revoke one of the caller's tokens (an admin may revoke anyone's)."""
    with hub.sessions() as session, session.begin():
        token = session.get(ApiToken, token_id) if 0 < token_id < 2**62 else None
        if token is None or (token.user_id != who.user_id and not who.can(Perm.USERS_ADMIN)):
            raise HTTPException(404, "no such token")
        if auth.revoke_api_token(session, token, utc_now()):
            owner = session.get(User, token.user_id)
            audit.record(
                session,
                audit.AuditEvent(
                    who.username,
                    "auth.token_revoked",
                    "user",
                    owner.username if owner else str(token.user_id),
                    {"token": token.id, "name": token.name},
                ),
            )
        return TokenView.of(token)


# ----------------------------------------------------------------------------- users
@router.get("/users", response_model=UserList, **access(Perm.USERS_READ))
def list_users(hub: HubDep) -> UserList:
    with hub.sessions() as session:
        return UserList(users=[UserView.of(u) for u in auth.list_users(session)])


@router.post(
    "/users",
    status_code=201,
    response_model=UserView,
    responses=PENDING_RESPONSE,
    **access(Perm.USERS_ADMIN),
)
def add_user(body: UserBody, hub: HubDep, who: Caller) -> UserView | JSONResponse:
    """Add a user; a supervisor or admin is only created once a second admin confirms."""
    try:
        with hub.sessions() as session, session.begin():
            outcome = user_admin.add_user(
                session,
                who,
                body.username,
                body.password,
                body.role,
                utc_now(),
                hub.settings.auth.confirmation_ttl_s,
            )
            if isinstance(outcome, user_admin.Pending):
                return _pending(outcome)
            return UserView.of(outcome.user)
    except user_admin.ChangeRefused as exc:
        raise HTTPException(exc.status, str(exc)) from exc
    except ValueError as exc:
        raise HTTPException(409, str(exc)) from exc


@router.patch(
    "/users/{username}",
    response_model=UserView,
    responses=PENDING_RESPONSE,
    **access(Perm.USERS_ADMIN),
)
def patch_user(username: str, body: UserPatch, hub: HubDep, who: Caller) -> UserView | JSONResponse:
    """Change a user's role, active flag or password (the two-admin rule applies)."""
    try:
        with hub.sessions() as session, session.begin():
            outcome = user_admin.change_user(
                session,
                who,
                username,
                role=body.role,
                active=body.active,
                password=body.password,
                now=utc_now(),
                ttl_s=hub.settings.auth.confirmation_ttl_s,
            )
            if isinstance(outcome, user_admin.Pending):
                return _pending(outcome)
            return UserView.of(outcome.user)
    except user_admin.ChangeRefused as exc:
        raise HTTPException(exc.status, str(exc)) from exc


@router.post(
    "/users/{username}/revoke", response_model=CredentialsEnded, **access(Perm.USERS_ADMIN)
)
def revoke_user(username: str, hub: HubDep, who: Caller) -> CredentialsEnded:
    """End every console session and revoke every API token of a user (a lost laptop)."""
    with hub.sessions() as session, session.begin():
        user = auth.find_user(session, username)
        if user is None:
            raise HTTPException(404, "no such user")
        ended = auth.end_credentials(session, user.id, utc_now())
        audit.record(
            session,
            audit.AuditEvent(
                who.username,
                "user.credentials_ended",
                "user",
                username,
                {"sessions": ended.sessions, "tokens": ended.tokens},
            ),
        )
    return CredentialsEnded(sessions=ended.sessions, tokens=ended.tokens)
