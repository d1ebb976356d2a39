"""Logging in and out, who am I, personal API tokens, and user administration."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import Field

from ouie.core.model_base import StrictModel
from ouie.core.timebase import utc_now
from ouie.hub import audit, auth
from ouie.hub.auth import Perm, Role
from ouie.hub.db import User
from ouie.hub.routers.deps import (
    API_PREFIX,
    SESSION_COOKIE,
    Caller,
    HubDep,
    LimiterDep,
    access,
)
from ouie.hub.schemas import UserView

router = APIRouter(prefix=API_PREFIX, tags=["users"])


# ----------------------------------------------------------------------------- bodies
class LoginBody(StrictModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class TokenBody(StrictModel):
    name: str = Field(min_length=1, max_length=100)


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


class UserList(StrictModel):
    users: list[UserView]


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


# ----------------------------------------------------------------------------- auth
@router.post("/auth/login", response_model=LoggedIn, **access("public"))
def login(
    body: LoginBody, request: Request, response: Response, hub: HubDep, limiter: LimiterDep
) -> LoggedIn:
    keys = (f"user:{body.username}", f"ip:{_client_ip(request)}")
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
        secure=settings.cookie_secure,
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
    with hub.sessions() as session, session.begin():
        user = session.get(User, who.user_id)
        if user is None:  # deleted between the guard and here
            raise HTTPException(401, "authentication required")
        token = auth.create_api_token(session, user, body.name, utc_now())
        audit.record(
            session,
            audit.AuditEvent(
                who.username, "auth.token_created", "user", who.username, {"name": body.name}
            ),
        )
    return NewToken(token=token, name=body.name)


# ----------------------------------------------------------------------------- users
@router.get("/users", response_model=UserList, **access(Perm.USERS_READ))
def list_users(hub: HubDep) -> UserList:
    with hub.sessions() as session:
        return UserList(users=[UserView.of(u) for u in auth.list_users(session)])


@router.post("/users", status_code=201, response_model=UserView, **access(Perm.USERS_ADMIN))
def add_user(body: UserBody, hub: HubDep, who: Caller) -> UserView:
    try:
        with hub.sessions() as session, session.begin():
            user = auth.create_user(
                session, body.username, body.password, body.role.value, utc_now()
            )
            audit.record(
                session,
                audit.AuditEvent(
                    who.username, "user.added", "user", user.username, {"role": user.role}
                ),
            )
            return UserView.of(user)
    except ValueError as exc:
        raise HTTPException(409, str(exc)) from exc


@router.patch("/users/{username}", response_model=UserView, **access(Perm.USERS_ADMIN))
def patch_user(username: str, body: UserPatch, hub: HubDep, who: Caller) -> UserView:
    with hub.sessions() as session, session.begin():
        user = auth.find_user(session, username)
        if user is None:
            raise HTTPException(404, "no such user")
        changed = auth.change_user(user, role=body.role, active=body.active, password=body.password)
        audit.record(
            session, audit.AuditEvent(who.username, "user.changed", "user", username, changed)
        )
        return UserView.of(user)
