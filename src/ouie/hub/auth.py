"""Users, roles, permissions, sessions and tokens.

Passwords are argon2id hashes (argon2-cffi). Console users get a session cookie (random
token, stored hashed) plus a CSRF token that every state-changing request made with the
cookie must echo in ``X-CSRF-Token``. Integrations use bearer API tokens (stored hashed; no
CSRF since browsers never send them by themselves); every token expires and can be revoked.
Sensors posting over HTTP use their own per-sensor bearer tokens, which grant nothing else.
A user's sessions and tokens all end when their password or role changes or they are
deactivated (``end_credentials``), so a demoted or reset account keeps nothing it had.

The permission table below is the single source of truth; the API declares one permission
per route and a test walks the app's route list to check every role against it.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from ouie.hub.db import ApiToken, User, UserSession
from ouie.hub.registry import hash_token, new_token


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    SUPERVISOR = "supervisor"
    AUDITOR = "auditor"
    ADMIN = "admin"


class Perm(StrEnum):
    INCIDENTS_READ = "incidents:read"
    INCIDENTS_ACT = "incidents:act"
    FEEDBACK_WRITE = "feedback:write"
    SENSORS_READ = "sensors:read"
    SENSORS_CONFIGURE = "sensors:configure"
    SENSORS_ADMIN = "sensors:admin"
    STATS_READ = "stats:read"
    USERS_READ = "users:read"
    USERS_ADMIN = "users:admin"
    AUDIT_READ = "audit:read"
    INGEST_READ = "ingest:read"
    METRICS_READ = "metrics:read"
    SYSTEM_ADMIN = "system:admin"
    TOKENS_OWN = "tokens:own"
    CAMERA_CUE = "camera:cue"
    DRONE_PLAN = "drone:plan"
    DRONE_APPROVE = "drone:approve"
    DRONE_ABORT = "drone:abort"


_VIEWER = {Perm.INCIDENTS_READ, Perm.SENSORS_READ, Perm.STATS_READ, Perm.TOKENS_OWN}
_OPERATOR = _VIEWER | {
    Perm.INCIDENTS_ACT,
    Perm.FEEDBACK_WRITE,
    Perm.CAMERA_CUE,
    Perm.DRONE_PLAN,
    Perm.DRONE_ABORT,
}
_SUPERVISOR = _OPERATOR | {
    Perm.DRONE_APPROVE,  # only supervisors may send a drone (issue 8; the dispatcher checks too)
    Perm.SENSORS_CONFIGURE,
    Perm.USERS_READ,
    Perm.INGEST_READ,
    Perm.METRICS_READ,
}
_AUDITOR = _VIEWER | {Perm.AUDIT_READ, Perm.USERS_READ, Perm.INGEST_READ, Perm.METRICS_READ}

#: role → permissions (docs/hub.md prints this table).
PERMISSIONS: dict[Role, frozenset[Perm]] = {
    Role.VIEWER: frozenset(_VIEWER),
    Role.OPERATOR: frozenset(_OPERATOR),
    Role.SUPERVISOR: frozenset(_SUPERVISOR),
    Role.AUDITOR: frozenset(_AUDITOR),
    Role.ADMIN: frozenset(Perm) - {Perm.DRONE_APPROVE},
}

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not a real password, only for constant-time misses")


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise ValueError("passwords must have at least 8 characters")
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True)
class Principal:
    user_id: int
    username: str
    role: Role
    via: str  # "session" | "token"
    csrf_token: str | None = None
    #: when a console session ends (the console warns before it does); None for tokens
    expires_at: datetime | None = None

    def can(self, perm: Perm) -> bool:
        return perm in PERMISSIONS[self.role]


def create_user(session: Session, username: str, password: str, role: str, now: datetime) -> User:
    role_value = Role(role)
    if find_user(session, username) is not None:
        raise ValueError(f"user {username!r} exists")
    user = User(
        username=username,
        password_hash=hash_password(password),
        role=role_value.value,
        active=True,
        created_at=now,
    )
    session.add(user)
    session.flush()
    return user


def authenticate_password(session: Session, username: str, password: str) -> User | None:
    user = find_user(session, username)
    if user is None or not user.active:
        verify_password(_DUMMY_HASH, password)
        return None
    if not verify_password(user.password_hash, password):
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


def start_session(session: Session, user: User, ttl_s: int, now: datetime) -> tuple[str, str]:
    """A new (cookie token, CSRF token) pair for ``user``."""
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(24)
    session.execute(delete(UserSession).where(UserSession.expires_at < now))
    session.add(
        UserSession(
            token_hash=hash_token(token),
            user_id=user.id,
            csrf_token=csrf,
            created_at=now,
            expires_at=now + timedelta(seconds=ttl_s),
        )
    )
    return token, csrf


def end_session(session: Session, token: str) -> None:
    session.execute(delete(UserSession).where(UserSession.token_hash == hash_token(token)))


def principal_from_session(session: Session, token: str, now: datetime) -> Principal | None:
    row = session.execute(
        select(UserSession, User)
        .join(User, User.id == UserSession.user_id)
        .where(UserSession.token_hash == hash_token(token))
    ).first()
    if row is None:
        return None
    user_session, user = row
    if user_session.expires_at < now or not user.active:
        return None
    return Principal(
        user.id,
        user.username,
        Role(user.role),
        "session",
        user_session.csrf_token,
        user_session.expires_at,
    )


#: lifetime of an API token when the caller does not say (``auth.token_ttl_days``)
DEFAULT_TOKEN_TTL = timedelta(days=90)


def create_api_token(
    session: Session, user: User, name: str, now: datetime, ttl: timedelta = DEFAULT_TOKEN_TTL
) -> str:
    token = new_token("ouie")
    session.add(
        ApiToken(
            token_hash=hash_token(token),
            user_id=user.id,
            name=name,
            created_at=now,
            expires_at=now + ttl,
        )
    )
    return token


def list_api_tokens(session: Session, user_id: int) -> list[ApiToken]:
    return list(
        session.execute(
            select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id)
        ).scalars()
    )


def revoke_api_token(session: Session, token: ApiToken, now: datetime) -> bool:
    """Revoke ``token``; False when it already was."""
    if token.revoked_at is not None:
        return False
    token.revoked_at = now
    return True


@dataclass(frozen=True)
class EndedCredentials:
    """What ``end_credentials`` ended, for the audit entry."""

    sessions: int
    tokens: int


def end_credentials(session: Session, user_id: int, now: datetime) -> EndedCredentials:
    """End every console session and revoke every API token of a user: called on a password
    or role change and on deactivation, so nothing issued under the old rights survives."""
    ended = session.execute(delete(UserSession).where(UserSession.user_id == user_id))
    revoked = session.execute(
        update(ApiToken)
        .where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return EndedCredentials(
        sessions=int(getattr(ended, "rowcount", 0) or 0),
        tokens=int(getattr(revoked, "rowcount", 0) or 0),
    )


def principal_from_token(session: Session, token: str, now: datetime) -> Principal | None:
    row = session.execute(
        select(ApiToken, User)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == hash_token(token))
    ).first()
    if row is None:
        return None
    api_token, user = row
    if not user.active or api_token.revoked_at is not None or api_token.expires_at <= now:
        return None
    if api_token.last_used_at is None or now - api_token.last_used_at > timedelta(minutes=5):
        api_token.last_used_at = now
    return Principal(user.id, user.username, Role(user.role), "token")


def identify(
    session: Session, *, bearer: str | None, session_token: str | None, now: datetime
) -> Principal | None:
    """Who presents these credentials: a bearer API token wins over a session cookie. The
    API's guard and the console's pages both ask this, so they cannot disagree."""
    if bearer:
        return principal_from_token(session, bearer, now)
    if session_token:
        return principal_from_session(session, session_token, now)
    return None


def list_users(session: Session) -> list[User]:
    return list(session.execute(select(User).order_by(User.username)).scalars())


def find_user(session: Session, username: str) -> User | None:
    return session.execute(select(User).where(User.username == username)).scalar_one_or_none()


def change_user(
    user: User,
    *,
    role: Role | None = None,
    active: bool | None = None,
    password: str | None = None,
    password_hash: str | None = None,
) -> dict[str, str | bool]:
    """Apply the given changes; returns what changed, for the audit entry (never a password).
    A role or active flag equal to the current one is no change. ``password_hash``: a
    password hashed earlier (a change that waited for a second admin)."""
    changed: dict[str, str | bool] = {}
    if role is not None and role.value != user.role:
        user.role = role.value
        changed["role"] = role.value
    if active is not None and active != user.active:
        user.active = active
        changed["active"] = active
    if password is not None:
        password_hash = hash_password(password)
    if password_hash is not None:
        user.password_hash = password_hash
        changed["password"] = "changed"
    return changed


def ends_credentials(changed: dict[str, str | bool]) -> bool:
    """Whether a change (``change_user``'s result) must end the user's sessions and tokens."""
    return "role" in changed or "password" in changed or changed.get("active") is False


class LoginLimiter:
    """At most ``attempts`` failed logins per account and ``ip_attempts`` per client address
    per window. Both count: spreading guesses over many addresses still locks the account,
    and one address cannot try many accounts. Keys are ``user:<name>`` and ``ip:<address>``
    (the address as ``ouie.hub.proxies`` resolves it, so a spoofed X-Forwarded-For from an
    untrusted peer changes nothing)."""

    def __init__(self, attempts: int, window_s: float, ip_attempts: int | None = None) -> None:
        self.attempts = attempts
        self.ip_attempts = ip_attempts if ip_attempts is not None else attempts
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _limit(self, key: str) -> int:
        return self.ip_attempts if key.startswith("ip:") else self.attempts

    def _recent(self, key: str, now: float) -> deque[float]:
        failures = self._failures.setdefault(key, deque())
        while failures and now - failures[0] > self.window_s:
            failures.popleft()
        return failures

    def blocked(self, *keys: str) -> bool:
        now = time.monotonic()
        with self._lock:
            return any(len(self._recent(key, now)) >= self._limit(key) for key in keys)

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in keys:
                self._recent(key, now).append(now)
            if len(self._failures) > 10_000:
                for key in [k for k, v in self._failures.items() if not v]:
                    del self._failures[key]

    def succeeded(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)
