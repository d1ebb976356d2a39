"""User changes that wait for a second admin: list, confirm, cancel (``ouie.hub.user_admin``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path

from ouie.core.model_base import StrictModel
from ouie.core.timebase import utc_now
from ouie.hub import user_admin
from ouie.hub.auth import Perm
from ouie.hub.db import UserChangeRequest
from ouie.hub.routers.deps import API_PREFIX, Caller, HubDep, access
from ouie.hub.schemas import UserChangeView, UserView

router = APIRouter(prefix=API_PREFIX, tags=["users"])

RequestId = Annotated[int, Path(ge=1, le=2**62)]


class UserChangeList(StrictModel):
    changes: list[UserChangeView]


@router.get("/users/changes", response_model=UserChangeList, **access(Perm.USERS_ADMIN))
def list_changes(hub: HubDep) -> UserChangeList:
    """Changes waiting for a second admin (expired ones are left out)."""
    with hub.sessions() as session:
        rows = user_admin.pending(session, utc_now())
        return UserChangeList(changes=[UserChangeView.of(row) for row in rows])


@router.post(
    "/users/changes/{request_id}/confirm", response_model=UserView, **access(Perm.USERS_ADMIN)
)
def confirm_change(request_id: RequestId, hub: HubDep, who: Caller) -> UserView:
    """Confirm another admin's pending change; it takes effect now."""
    try:
        with hub.sessions() as session, session.begin():
            user = user_admin.confirm(session, who, request_id, utc_now())
            return UserView.of(user)
    except user_admin.ChangeRefused as exc:
        raise HTTPException(exc.status, str(exc)) from exc


@router.post(
    "/users/changes/{request_id}/cancel",
    response_model=UserChangeView,
    **access(Perm.USERS_ADMIN),
)
def cancel_change(request_id: RequestId, hub: HubDep, who: Caller) -> UserChangeView:
    """Withdraw or refuse a pending change."""
    try:
        with hub.sessions() as session, session.begin():
            user_admin.cancel(session, who, request_id, utc_now())
            row = session.get(UserChangeRequest, request_id)
            assert row is not None  # cancel() found it in this transaction
            return UserChangeView.of(row)
    except user_admin.ChangeRefused as exc:
        raise HTTPException(exc.status, str(exc)) from exc
