"""Rule ``drone-approval-unsupervised``: a drone may only launch on a supervisor's approval."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ouie.compliance.findings import Finding
from ouie.compliance.rules.walk import truthy, walk

_DRONE_KEY = re.compile(r"drone|uav|uas|dock", re.I)
_APPROVAL_ROLE_KEYS = frozenset(
    {"approval_role", "approval_roles", "approver_role", "approver_roles", "approve_role"}
)
_APPROVAL_FLAG_KEYS = frozenset({"require_approval", "approval_required", "requires_approval"})
_AUTO_KEYS = frozenset({"auto_launch", "auto_approve", "autonomous_launch", "launch_on_alarm"})
SUPERVISOR_ROLE = "supervisor"


def _drone_sections(raw: Mapping[str, Any]) -> list[tuple[str, Any]]:
    sections: list[tuple[str, Any]] = []
    for path, key, value in walk(raw):
        inside = any(path.startswith(p + ".") for p, _ in sections)
        if key and _DRONE_KEY.search(key) and isinstance(value, Mapping | list) and not inside:
            sections.append((path, value))
    return sections


def _enabled(section: Any) -> bool:
    if isinstance(section, list):
        return len(section) > 0
    if isinstance(section, Mapping):
        if "enabled" in section:
            return truthy(section["enabled"])
        return len(section) > 0
    return False


def drone_findings(raw: Mapping[str, Any], source: str = "") -> list[Finding]:
    """Drone launches must wait for a supervisor: approval may not be switched off or
    given to another role, and someone must hold the supervisor role."""
    found: list[Finding] = []
    drones = [(p, s) for p, s in _drone_sections(raw) if _enabled(s)]
    if not drones:
        return found
    for base, section in drones:
        for path, key, value in walk(section, base):
            lowered = key.lower()
            if lowered in _APPROVAL_FLAG_KEYS and not truthy(value):
                found.append(
                    Finding(
                        "drone-approval-unsupervised",
                        "drone missions must require a supervisor's explicit approval",
                        path,
                        source,
                    )
                )
            elif lowered in _AUTO_KEYS and truthy(value):
                found.append(
                    Finding(
                        "drone-approval-unsupervised",
                        "automatic launch bypasses the supervisor's approval",
                        path,
                        source,
                    )
                )
            elif lowered in _APPROVAL_ROLE_KEYS:
                granted = [value] if isinstance(value, str) else list(value or [])
                others = sorted({str(r) for r in granted} - {SUPERVISOR_ROLE})
                if others or not granted:
                    found.append(
                        Finding(
                            "drone-approval-unsupervised",
                            "only the supervisor role may approve a drone mission"
                            + (f" (not {', '.join(others)})" if others else ""),
                            path,
                            source,
                        )
                    )
    found += _permission_findings(raw, source)
    users = raw.get("users")
    if isinstance(users, list) and users:
        roles = {str(u.get("role", "")) for u in users if isinstance(u, Mapping)}
        if SUPERVISOR_ROLE not in roles:
            found.append(
                Finding(
                    "drone-approval-unsupervised",
                    "drones are configured but no user holds the supervisor role",
                    "users",
                    source,
                )
            )
    return found


def _permission_findings(raw: Mapping[str, Any], source: str) -> list[Finding]:
    """A ``roles:``/``permissions:`` table (role → permissions) granting drone approval or
    launch to anyone but supervisors."""
    found = []
    for table_key in ("roles", "permissions"):
        table = raw.get(table_key)
        if not isinstance(table, Mapping):
            continue
        for role, perms in table.items():
            if str(role) == SUPERVISOR_ROLE or not isinstance(perms, list):
                continue
            for perm in perms:
                text = str(perm).lower()
                if "drone" in text and any(w in text for w in ("approve", "launch", "dispatch")):
                    found.append(
                        Finding(
                            "drone-approval-unsupervised",
                            f"role {role!r} may {perm!r}; only supervisors approve drones",
                            f"{table_key}.{role}",
                            source,
                        )
                    )
    return found
