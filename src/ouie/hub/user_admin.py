"""Changing users under the two-admin rule (issue 18, finding 6).

- Nobody changes their own role or deactivates themselves: an admin could otherwise make
  itself supervisor and approve drone flights (admins lack ``drone:approve``).
- Granting a privileged role (supervisor or admin: drone approval, user administration),
  creating a user with one, reactivating a privileged user or resetting another privileged
  user's password waits for a *second* admin's confirmation (``UserChangeRequest``): one
  admin alone could otherwise take over a supervisor's account.
- A change to a role or password, or a deactivation, ends every session and API token of
  the user (``auth.end_credentials``).

The API (``routers/users.py``) and the console call these functions; the CLI
(``ouie user add``) stays the bootstrap path for whoever runs the hub's host.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ouie.hub import audit, auth
from ouie.hub.auth import Principal, Role
from ouie.hub.db import User, UserChangeRequest

#: roles that only two admins together may grant
PRIVILEGED = frozenset({Role.SUPERVISOR, Role.ADMIN})


class ChangeRefused(Exception):
    """The change is not allowed; ``status`` is the HTTP answer (403, 404, 409, 410)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Applied:
    user: User


@dataclass(frozen=True)
class Pending:
    request: UserChangeRequest


Outcome = Applied | Pending


def _privileged(role: str | Role | None) -> bool:
    return role is not None and Role(role) in PRIVILEGED


def _apply(
    session: Session,
    actor: str,
    user: User,
    *,
    role: Role | None,
    active: bool | None,
    password: str | None = None,
    password_hash: str | None = None,
    now: datetime,
    action: str = "user.changed",
    request_id: int | None = None,
) -> User:
    changes = auth.change_user(
        user, role=role, active=active, password=password, password_hash=password_hash
    )
    changed: dict[str, str | bool | int] = dict(changes)
    if auth.ends_credentials(changes):
        ended = auth.end_credentials(session, user.id, now)
        changed["sessions_ended"] = ended.sessions
        changed["tokens_revoked"] = ended.tokens
    if request_id is not None:
        changed["request"] = request_id
    audit.record(session, audit.AuditEvent(actor, action, "user", user.username, changed))
    return user


def _request(
    session: Session,
    actor: Principal,
    kind: str,
    username: str,
    *,
    role: Role | None,
    active: bool | None,
    password: str | None,
    now: datetime,
    ttl_s: int,
) -> Pending:
    request = UserChangeRequest(
        kind=kind,
        username=username,
        role=role.value if role is not None else None,
        active=active,
        password_hash=auth.hash_password(password) if password is not None else None,
        requested_by=actor.username,
        requested_at=now,
        expires_at=now + timedelta(seconds=ttl_s),
        state="pending",
    )
    session.add(request)
    session.flush()
    detail: dict[str, str | bool | int] = {"request": request.id, "kind": kind}
    if role is not None:
        detail["role"] = role.value
    if active is not None:
        detail["active"] = active
    if password is not None:
        detail["password"] = "changed"
    audit.record(
        session, audit.AuditEvent(actor.username, "user.change_requested", "user", username, detail)
    )
    return Pending(request)


def add_user(
    session: Session,
    actor: Principal,
    username: str,
    password: str,
    role: Role,
    now: datetime,
    ttl_s: int,
) -> Outcome:
    """Create a user; one with a privileged role waits for a second admin."""
    if auth.find_user(session, username) is not None:
        raise ChangeRefused(409, f"user {username!r} exists")
    if _privileged(role):
        return _request(
            session,
            actor,
            "create",
            username,
            role=role,
            active=True,
            password=password,
            now=now,
            ttl_s=ttl_s,
        )
    user = auth.create_user(session, username, password, role.value, now)
    audit.record(
        session,
        audit.AuditEvent(actor.username, "user.added", "user", user.username, {"role": user.role}),
    )
    return Applied(user)


def change_user(
    session: Session,
    actor: Principal,
    username: str,
    *,
    role: Role | None,
    active: bool | None,
    password: str | None,
    now: datetime,
    ttl_s: int,
) -> Outcome:
    """Apply a change now, or file it for a second admin (see the module docstring)."""
    user = auth.find_user(session, username)
    if user is None:
        raise ChangeRefused(404, "no such user")
    if role is not None and role.value == user.role:
        role = None  # the console sends the current role with every save: not a change
    if active is not None and active == user.active:
        active = None
    own = user.id == actor.user_id
    if own and role is not None:
        raise ChangeRefused(403, "nobody may change their own role")
    if own and active is False:
        raise ChangeRefused(403, "nobody may deactivate themselves")
    grants = _privileged(role) or (
        _privileged(user.role)
        and not own
        and (password is not None or (active is True and role is None))
    )
    if grants:
        return _request(
            session,
            actor,
            "change",
            username,
            role=role,
            active=active,
            password=password,
            now=now,
            ttl_s=ttl_s,
        )
    return Applied(
        _apply(session, actor.username, user, role=role, active=active, password=password, now=now)
    )


def _open_request(session: Session, request_id: int, now: datetime) -> UserChangeRequest:
    request = session.get(UserChangeRequest, request_id)
    if request is None:
        raise ChangeRefused(404, "no such change request")
    if request.state != "pending":
        raise ChangeRefused(409, f"the request is {request.state}")
    if request.expires_at <= now:
        request.state = "expired"
        raise ChangeRefused(410, "the request expired; ask again")
    return request


def confirm(session: Session, actor: Principal, request_id: int, now: datetime) -> User:
    """A second admin confirms a pending change, which is applied now."""
    request = _open_request(session, request_id, now)
    if actor.username == request.requested_by:
        raise ChangeRefused(403, "a second admin must confirm this change")
    if actor.username == request.username:
        raise ChangeRefused(403, "nobody may confirm a change to their own account")
    role = Role(request.role) if request.role is not None else None
    request.state, request.decided_by, request.decided_at = "confirmed", actor.username, now
    if request.kind == "create":
        if auth.find_user(session, request.username) is not None:
            raise ChangeRefused(409, f"user {request.username!r} exists")
        user = User(
            username=request.username,
            password_hash=request.password_hash or "",
            role=(role or Role.VIEWER).value,
            active=True,
            created_at=now,
        )
        session.add(user)
        session.flush()
        audit.record(
            session,
            audit.AuditEvent(
                actor.username,
                "user.added",
                "user",
                user.username,
                {"role": user.role, "request": request.id, "requested_by": request.requested_by},
            ),
        )
        return user
    target = auth.find_user(session, request.username)
    if target is None:
        raise ChangeRefused(404, "the user no longer exists")
    return _apply(
        session,
        actor.username,
        target,
        role=role,
        active=request.active,
        password_hash=request.password_hash,
        now=now,
        action="user.change_confirmed",
        request_id=request.id,
    )


def cancel(session: Session, actor: Principal, request_id: int, now: datetime) -> None:
    """Withdraw (the requester) or refuse (another admin) a pending change."""
    request = _open_request(session, request_id, now)
    request.state, request.decided_by, request.decided_at = "cancelled", actor.username, now
    request.password_hash = None  # nothing of a refused password is kept
    audit.record(
        session,
        audit.AuditEvent(
            actor.username,
            "user.change_cancelled",
            "user",
            request.username,
            {"request": request.id},
        ),
    )


def pending(session: Session, now: datetime) -> list[UserChangeRequest]:
    return list(
        session.execute(
            select(UserChangeRequest)
            .where(UserChangeRequest.state == "pending", UserChangeRequest.expires_at > now)
            .order_by(UserChangeRequest.id)
        ).scalars()
    )
