"""The signed audit head, for anyone to record (``ouie.hub.anchor``): public, like the page."""

from __future__ import annotations

from fastapi import APIRouter

from ouie.hub.anchor import AnchorPublication
from ouie.hub.routers.deps import API_PREFIX, HubDep, access

router = APIRouter(prefix=API_PREFIX, tags=["public"])


@router.get("/public/audit-anchor", response_model=AnchorPublication, **access("public"))
def audit_anchor(hub: HubDep) -> AnchorPublication:
    """The latest signed heads of the audit chain and the key that signs them. Save them
    (e.g. append ``latest`` to a file daily); ``ouie audit verify --anchors FILE`` then
    detects any later rewrite of the log."""
    return hub.anchor_publication()
