"""The hub's HTTP API (``/api/v1``), live stream (SSE), HTTP ingest, metrics and health.

Every route is registered through ``_route`` with exactly one access rule — ``public``,
``authenticated``, ``sensor`` (a per-sensor ingest token) or one permission from
``ouie.hub.auth.Perm`` — which the guard enforces and the OpenAPI document shows as
``x-ouie-access``. Tests walk ``app.routes`` and check each rule with every role.
Reads of incident data, state changes and configuration changes are audited.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import Body, Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ouie.core.labels import EventLabel
from ouie.core.timebase import utc_now
from ouie.hub import audit, auth, incidents, sensors
from ouie.hub.auth import Perm, Principal, Role
from ouie.hub.db import AuditEntry, DeadLetter, Detection, Incident, Sensor, User
from ouie.hub.ingest import Envelope
from ouie.hub.registry import SensorInfo
from ouie.hub.service import Hub

SESSION_COOKIE = "ouie_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ACCESS_KEY = "x-ouie-access"

Access = Perm | Literal["public", "authenticated", "sensor"]


# ----------------------------------------------------------------------------- bodies
class Body_(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginBody(Body_):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class TransitionBody(Body_):
    to: Literal["acknowledged", "verifying", "confirmed", "dismissed", "closed"]
    comment: str = Field(default="", max_length=2000)


class FeedbackBody(Body_):
    verdict: Literal["true_alarm", "false_alarm", "unsure"]
    cause: str = Field(default="", max_length=200)
    comment: str = Field(default="", max_length=2000)


class SensorBody(Body_):
    site: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    sensor_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    lat: float = Field(ge=-90.0, le=90.0)
    lon: float = Field(ge=-180.0, le=180.0)
    height_m: float = Field(default=0.0, ge=-500.0, le=9000.0)
    mounting_height_m: float = Field(default=4.0, ge=0.0, le=200.0)
    mounting: str = Field(default="", max_length=200)
    calibration_db: float | None = Field(default=None, ge=0.0, le=200.0)
    name: str = Field(default="", max_length=200)


class ThresholdsBody(Body_):
    thresholds: dict[EventLabel, Annotated[float, Field(gt=0.0, lt=1.0)]]


class UserBody(Body_):
    username: str = Field(pattern=r"^[A-Za-z0-9_.@-]{1,64}$")
    password: str = Field(min_length=8, max_length=256)
    role: Role


class UserPatch(Body_):
    role: Role | None = None
    active: bool | None = None
    password: str | None = Field(default=None, min_length=8, max_length=256)


class TokenBody(Body_):
    name: str = Field(min_length=1, max_length=100)


# ----------------------------------------------------------------------------- helpers
def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def principal(request: Request) -> Principal:
    value: Principal = request.state.principal
    return value


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _detection(d: Detection) -> dict[str, Any]:
    return {
        "id": d.id,
        "message_id": d.message_id,
        "site": d.site,
        "sensor_id": d.sensor_id,
        "label": d.label,
        "onset": d.onset.isoformat(),
        "offset": d.offset.isoformat(),
        "peak_score": d.peak_score,
        "level_dbfs": d.level_dbfs,
        "level_db_spl": d.level_db_spl,
        "model_id": d.model_id,
        "speech_present": d.speech_present,
        "sequence": d.sequence,
        "received_at": d.received_at.isoformat(),
        "incident_id": d.incident_id,
        "fused_as": d.fused_as,
    }


def _user(u: User) -> dict[str, Any]:
    return {
        "username": u.username,
        "role": u.role,
        "active": u.active,
        "created_at": u.created_at.isoformat(),
    }


def create_app(hub: Hub, manage_hub: bool = True) -> FastAPI:
    """The FastAPI app for ``hub``; with ``manage_hub`` its lifespan starts/stops the hub."""
    settings = hub.settings
    limiter = auth.LoginLimiter(settings.auth.login_attempts, settings.auth.login_window_s)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        verifying = False
        if manage_hub:
            await hub.start()
            if settings.verify is not None:
                from ouie.hub.verification import start_configured

                verifying = await start_configured(hub)
        try:
            yield
        finally:
            if manage_hub:
                if verifying:
                    from ouie.hub.verification import detach

                    await detach(hub)
                await hub.stop()

    app = FastAPI(
        title="ouie hub",
        version="1",
        lifespan=lifespan,
        description="Acoustic incidents: ingest, fusion, localisation, operators' API.",
    )
    app.state.hub = hub
    prefix = "/api/v1"

    def guard_for(access: Access) -> Callable[[Request], None]:
        def guard(request: Request) -> None:
            header = request.headers.get("authorization", "")
            bearer = header[7:].strip() if header.lower().startswith("bearer ") else None
            if access == "public":
                return
            if access == "sensor":
                sensor = hub.registry.by_token(bearer) if bearer else None
                if sensor is None and bearer:
                    hub.reload_sensors()
                    sensor = hub.registry.by_token(bearer)
                if sensor is None:
                    raise HTTPException(
                        401, "a sensor token is required", {"WWW-Authenticate": "Bearer"}
                    )
                request.state.sensor = sensor
                return
            now = utc_now()
            found: Principal | None = None
            with hub.sessions() as session, session.begin():
                if bearer:
                    found = auth.principal_from_token(session, bearer, now)
                else:
                    cookie = request.cookies.get(SESSION_COOKIE)
                    if cookie:
                        found = auth.principal_from_session(session, cookie, now)
            if found is None:
                raise HTTPException(401, "authentication required", {"WWW-Authenticate": "Bearer"})
            if found.via == "session" and request.method not in SAFE_METHODS:
                sent = request.headers.get(CSRF_HEADER, "")
                if not found.csrf_token or not secrets.compare_digest(sent, found.csrf_token):
                    raise HTTPException(403, "missing or wrong CSRF token")
            if access != "authenticated" and not found.can(Perm(access)):
                raise HTTPException(403, f"role {found.role} lacks {access}")
            request.state.principal = found

        return guard

    def route(method: str, path: str, access: Access, **kwargs: Any) -> Callable[[Any], Any]:
        def register(fn: Any) -> Any:
            app.add_api_route(
                prefix + path,
                fn,
                methods=[method],
                dependencies=[Depends(guard_for(access))],
                openapi_extra={ACCESS_KEY: str(access)},
                **kwargs,
            )
            return fn

        return register

    def audited_read(
        session: Session, who: Principal, action: str, object_id: str, **detail: Any
    ) -> None:
        audit.record(
            session,
            audit.AuditEvent(who.username, action, "incident", object_id, detail),
        )
        hub.metrics.audit_entries.inc()

    # ------------------------------------------------------------------ public
    @route("GET", "/health", "public")
    def health() -> dict[str, Any]:
        with hub.sessions() as session:
            session.execute(select(1))
        mqtt = "disabled"
        if hub.mqtt is not None:
            mqtt = "connected" if hub.mqtt.connected.is_set() else "disconnected"
        return {"status": "ok", "ingest_queue": hub.worker.queue.qsize(), "mqtt": mqtt}

    @route("GET", "/public/summary", "public")
    def public_summary() -> dict[str, Any]:
        """Transparency data: sensor places, what is detected, counts per class and week."""
        since = utc_now() - timedelta(days=7)
        with hub.sessions() as session:
            rows = session.execute(select(Sensor)).scalars().all()
            counts = session.execute(
                select(Incident.label, func.count())
                .where(Incident.created_at >= since)
                .group_by(Incident.label)
            ).all()
        return {
            "sensors": [
                {"site": s.site, "sensor_id": s.sensor_id, "lat": s.lat, "lon": s.lon} for s in rows
            ],
            "labels": [label.value for label in EventLabel],
            "never_collected": ["audio", "speech", "transcripts", "embeddings"],
            "retention_days": settings.retention.days,
            "incidents_last_7_days": {label: int(n) for label, n in counts},
        }

    # ------------------------------------------------------------------ auth
    @route("POST", "/auth/login", "public")
    def login(body: LoginBody, request: Request, response: Response) -> dict[str, Any]:
        keys = (f"user:{body.username}", f"ip:{_client_ip(request)}")
        if limiter.blocked(*keys):
            raise HTTPException(429, "too many failed logins; try again later")
        now = utc_now()
        with hub.sessions() as session, session.begin():
            user = auth.authenticate_password(session, body.username, body.password)
            if user is None:
                limiter.failed(*keys)
                audit.record(
                    session,
                    audit.AuditEvent(
                        body.username[:64], "auth.login_failed", "user", body.username[:64]
                    ),
                )
                failed = True
            else:
                failed = False
                limiter.succeeded(keys[0])
                token, csrf = auth.start_session(session, user, settings.auth.session_ttl_s, now)
                audit.record(
                    session, audit.AuditEvent(user.username, "auth.login", "user", user.username)
                )
                result = {"username": user.username, "role": user.role, "csrf_token": csrf}
        if failed:
            raise HTTPException(401, "wrong user name or password")
        response.set_cookie(
            SESSION_COOKIE,
            token,
            max_age=settings.auth.session_ttl_s,
            httponly=True,
            samesite="strict",
            secure=settings.auth.cookie_secure,
            path="/",
        )
        return result

    @route("POST", "/auth/logout", "authenticated")
    def logout(request: Request, response: Response) -> dict[str, str]:
        cookie = request.cookies.get(SESSION_COOKIE)
        with hub.sessions() as session, session.begin():
            if cookie:
                auth.end_session(session, cookie)
            who = principal(request)
            audit.record(
                session, audit.AuditEvent(who.username, "auth.logout", "user", who.username)
            )
        response.delete_cookie(SESSION_COOKIE, path="/")
        return {"status": "logged out"}

    @route("GET", "/auth/me", "authenticated")
    def me(request: Request) -> dict[str, Any]:
        who = principal(request)
        return {
            "username": who.username,
            "role": who.role.value,
            "permissions": sorted(p.value for p in auth.PERMISSIONS[who.role]),
            "csrf_token": who.csrf_token,
        }

    @route("POST", "/auth/tokens", Perm.TOKENS_OWN, status_code=201)
    def create_token(body: TokenBody, request: Request) -> dict[str, str]:
        who = principal(request)
        with hub.sessions() as session, session.begin():
            user = session.get(User, who.user_id)
            assert user is not None
            token = auth.create_api_token(session, user, body.name, utc_now())
            audit.record(
                session,
                audit.AuditEvent(
                    who.username, "auth.token_created", "user", who.username, {"name": body.name}
                ),
            )
        return {"token": token, "name": body.name}

    # ------------------------------------------------------------------ incidents
    @route("GET", "/incidents", Perm.INCIDENTS_READ)
    def list_incidents(
        request: Request,
        state: Annotated[str | None, Query(max_length=16)] = None,
        label: EventLabel | None = None,
        site: Annotated[str | None, Query(max_length=64)] = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> dict[str, Any]:
        query = select(Incident).order_by(Incident.created_at.desc()).limit(limit)
        if state:
            query = query.where(Incident.state == state)
        if label:
            query = query.where(Incident.label == label.value)
        if site:
            query = query.where(Incident.site == site)
        if since:
            query = query.where(Incident.created_at >= _aware(since))
        if until:
            query = query.where(Incident.created_at < _aware(until))
        with hub.sessions() as session, session.begin():
            rows = session.execute(query).scalars().all()
            audited_read(session, principal(request), "incident.list", "*", count=len(rows))
            return {"incidents": [incidents.summary(row) for row in rows]}

    @route("GET", "/incidents/{incident_id}", Perm.INCIDENTS_READ)
    def get_incident(incident_id: str, request: Request) -> dict[str, Any]:
        with hub.sessions() as session, session.begin():
            incident = session.get(Incident, incident_id[:64])
            if incident is None:
                raise HTTPException(404, "no such incident")
            audited_read(session, principal(request), "incident.read", incident.id)
            data = incidents.summary(incident)
            data["detections"] = [_detection(d) for d in incident.detections]
            data["transitions"] = [
                {
                    "from": t.from_state,
                    "to": t.to_state,
                    "actor": t.actor,
                    "at": t.at.isoformat(),
                    "comment": t.comment,
                }
                for t in incident.transitions
            ]
            data["feedback"] = [
                {
                    "verdict": f.verdict,
                    "cause": f.cause,
                    "comment": f.comment,
                    "actor": f.actor,
                    "at": f.created_at.isoformat(),
                }
                for f in incident.feedback
            ]
            data["audit"] = [
                {"seq": a.seq, "at": a.at.isoformat(), "actor": a.actor, "action": a.action}
                for a in session.execute(
                    select(AuditEntry)
                    .where(
                        AuditEntry.object_type == "incident", AuditEntry.object_id == incident.id
                    )
                    .order_by(AuditEntry.seq)
                    .limit(500)
                ).scalars()
            ]
            return data

    @route("POST", "/incidents/{incident_id}/transitions", Perm.INCIDENTS_ACT)
    def transition(incident_id: str, body: TransitionBody, request: Request) -> dict[str, Any]:
        who = principal(request)
        try:
            with hub.sessions() as session, session.begin():
                incident = incidents.transition(
                    session, incident_id[:64], body.to, who.username, body.comment, utc_now()
                )
                data = incidents.summary(incident)
        except incidents.NotFound as exc:
            raise HTTPException(404, str(exc)) from exc
        except incidents.TransitionError as exc:
            raise HTTPException(409, str(exc)) from exc
        hub.live.publish({"type": "incident.updated", "incident": data})
        change = "closed" if body.to == "closed" else "state_changed"
        hub.notify_verification([(str(data["id"]), change)])
        return data

    @route("POST", "/incidents/{incident_id}/feedback", Perm.FEEDBACK_WRITE, status_code=201)
    def feedback(incident_id: str, body: FeedbackBody, request: Request) -> dict[str, Any]:
        who = principal(request)
        try:
            with hub.sessions() as session, session.begin():
                incidents.add_feedback(
                    session,
                    incident_id[:64],
                    who.username,
                    body.verdict,
                    body.cause,
                    body.comment,
                    utc_now(),
                )
        except incidents.NotFound as exc:
            raise HTTPException(404, str(exc)) from exc
        return {"incident_id": incident_id, "verdict": body.verdict}

    @route("GET", "/detections", Perm.INCIDENTS_READ)
    def list_detections(
        request: Request,
        incident_id: Annotated[str | None, Query(max_length=64)] = None,
        site: Annotated[str | None, Query(max_length=64)] = None,
        sensor_id: Annotated[str | None, Query(max_length=64)] = None,
        label: EventLabel | None = None,
        since: datetime | None = None,
        limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    ) -> dict[str, Any]:
        query = select(Detection).order_by(Detection.onset.desc()).limit(limit)
        if incident_id:
            query = query.where(Detection.incident_id == incident_id)
        if site:
            query = query.where(Detection.site == site)
        if sensor_id:
            query = query.where(Detection.sensor_id == sensor_id)
        if label:
            query = query.where(Detection.label == label.value)
        if since:
            query = query.where(Detection.onset >= _aware(since))
        with hub.sessions() as session, session.begin():
            rows = session.execute(query).scalars().all()
            audited_read(
                session, principal(request), "detection.list", incident_id or "*", count=len(rows)
            )
            return {"detections": [_detection(d) for d in rows]}

    @route("GET", "/stream", Perm.INCIDENTS_READ, response_class=StreamingResponse)
    async def stream(request: Request) -> StreamingResponse:
        """Server-Sent Events: ``incident.created`` / ``incident.updated``, JSON data."""
        who = principal(request)

        def record() -> None:
            with hub.sessions() as session, session.begin():
                audited_read(session, who, "incident.stream", "*")

        await asyncio.to_thread(record)
        queue = hub.live.subscribe()

        async def events() -> AsyncIterator[bytes]:
            try:
                yield b"retry: 2000\n: connected\n\n"
                while True:
                    if await request.is_disconnected():
                        return
                    try:
                        message = await asyncio.wait_for(queue.get(), 15.0)
                    except TimeoutError:
                        yield b": keep-alive\n\n"
                        continue
                    data = json.dumps(message["incident"], separators=(",", ":"))
                    yield f"event: {message['type']}\ndata: {data}\n\n".encode()
            finally:
                hub.live.unsubscribe(queue)

        return StreamingResponse(
            events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
        )

    # ------------------------------------------------------------------ sensors
    @route("GET", "/sensors", Perm.SENSORS_READ)
    def list_sensors() -> dict[str, Any]:
        now = utc_now()
        with hub.sessions() as session:
            rows = (
                session.execute(select(Sensor).order_by(Sensor.site, Sensor.sensor_id))
                .scalars()
                .all()
            )
            return {
                "sensors": [sensors.describe(s, settings.ingest.stale_after_s, now) for s in rows]
            }

    @route("GET", "/sensors/{site}/{sensor_id}", Perm.SENSORS_READ)
    def get_sensor(site: str, sensor_id: str) -> dict[str, Any]:
        with hub.sessions() as session:
            sensor = sensors.find(session, site, sensor_id)
            if sensor is None:
                raise HTTPException(404, "no such sensor")
            return sensors.describe(sensor, settings.ingest.stale_after_s, utc_now())

    @route("POST", "/sensors", Perm.SENSORS_ADMIN, status_code=201)
    def add_sensor(body: SensorBody, request: Request) -> dict[str, Any]:
        now = utc_now()
        try:
            with hub.sessions() as session, session.begin():
                sensor, token = sensors.add_sensor(
                    session, actor=principal(request).username, now=now, **body.model_dump()
                )
                data = sensors.describe(sensor, settings.ingest.stale_after_s, now)
        except sensors.SensorError as exc:
            raise HTTPException(409, str(exc)) from exc
        hub.reload_sensors()
        return {"sensor": data, "token": token}

    @route("PUT", "/sensors/{site}/{sensor_id}/thresholds", Perm.SENSORS_CONFIGURE)
    async def put_thresholds(
        site: str, sensor_id: str, body: ThresholdsBody, request: Request
    ) -> dict[str, Any]:
        who = principal(request)

        def write() -> dict[str, float]:
            with hub.sessions() as session, session.begin():
                sensor = sensors.find(session, site, sensor_id)
                if sensor is None:
                    raise HTTPException(404, "no such sensor")
                return sensors.set_thresholds(
                    session,
                    sensor,
                    {k.value: v for k, v in body.thresholds.items()},
                    who.username,
                    utc_now(),
                )

        clean = await asyncio.to_thread(write)
        await hub.publish_thresholds(site, sensor_id, clean)
        return {"site": site, "sensor_id": sensor_id, "thresholds": clean}

    @route("POST", "/sensors/{site}/{sensor_id}/token", Perm.SENSORS_ADMIN)
    def rotate_sensor_token(site: str, sensor_id: str, request: Request) -> dict[str, str]:
        with hub.sessions() as session, session.begin():
            sensor = sensors.find(session, site, sensor_id)
            if sensor is None:
                raise HTTPException(404, "no such sensor")
            token = sensors.rotate_token(session, sensor, principal(request).username, utc_now())
        hub.reload_sensors()
        return {"token": token}

    # ------------------------------------------------------------------ stats
    @route("GET", "/stats/precision", Perm.STATS_READ)
    def stats_precision(since: datetime | None = None) -> dict[str, Any]:
        with hub.sessions() as session:
            return incidents.precision_stats(session, _aware(since) if since else None)

    @route("GET", "/stats/incidents", Perm.STATS_READ)
    def stats_incidents(days: Annotated[int, Query(ge=1, le=3650)] = 30) -> dict[str, Any]:
        now = utc_now()
        since = now - timedelta(days=days)
        with hub.sessions() as session:
            by_state = {
                state: int(n)
                for state, n in session.execute(
                    select(Incident.state, func.count())
                    .where(Incident.created_at >= since)
                    .group_by(Incident.state)
                ).all()
            }
            return {
                "daily": incidents.daily_counts(session, since, now + timedelta(seconds=1)),
                "by_state": by_state,
                "response_times": incidents.response_times(session, since),
            }

    # ------------------------------------------------------------------ users
    @route("GET", "/users", Perm.USERS_READ)
    def list_users() -> dict[str, Any]:
        with hub.sessions() as session:
            rows = session.execute(select(User).order_by(User.username)).scalars().all()
            return {"users": [_user(u) for u in rows]}

    @route("POST", "/users", Perm.USERS_ADMIN, status_code=201)
    def add_user(body: UserBody, request: Request) -> dict[str, Any]:
        who = principal(request)
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
                return _user(user)
        except ValueError as exc:
            raise HTTPException(409, str(exc)) from exc

    @route("PATCH", "/users/{username}", Perm.USERS_ADMIN)
    def patch_user(username: str, body: UserPatch, request: Request) -> dict[str, Any]:
        who = principal(request)
        with hub.sessions() as session, session.begin():
            user = session.execute(
                select(User).where(User.username == username)
            ).scalar_one_or_none()
            if user is None:
                raise HTTPException(404, "no such user")
            changed: dict[str, Any] = {}
            if body.role is not None:
                user.role = body.role.value
                changed["role"] = body.role.value
            if body.active is not None:
                user.active = body.active
                changed["active"] = body.active
            if body.password is not None:
                user.password_hash = auth.hash_password(body.password)
                changed["password"] = "changed"
            audit.record(
                session, audit.AuditEvent(who.username, "user.changed", "user", username, changed)
            )
            return _user(user)

    # ------------------------------------------------------------------ audit, ops
    @route("GET", "/audit", Perm.AUDIT_READ)
    def list_audit(
        request: Request,
        after_seq: Annotated[int, Query(ge=0, le=2**62)] = 0,
        limit: Annotated[int, Query(ge=1, le=5000)] = 500,
        object_id: Annotated[str | None, Query(max_length=128)] = None,
    ) -> dict[str, Any]:
        query = (
            select(AuditEntry)
            .where(AuditEntry.seq > after_seq)
            .order_by(AuditEntry.seq)
            .limit(limit)
        )
        if object_id:
            query = query.where(AuditEntry.object_id == object_id)
        with hub.sessions() as session, session.begin():
            rows = session.execute(query).scalars().all()
            entries = [
                {
                    "seq": a.seq,
                    "at": a.at.isoformat(),
                    "actor": a.actor,
                    "action": a.action,
                    "object_type": a.object_type,
                    "object_id": a.object_id,
                    "detail": json.loads(a.detail),
                    "hash": a.hash,
                    "prev_hash": a.prev_hash,
                }
                for a in rows
            ]
            audit.record(
                session,
                audit.AuditEvent(
                    principal(request).username,
                    "audit.read",
                    "audit",
                    str(after_seq),
                    {"count": len(rows)},
                ),
            )
        return {"entries": entries}

    @route("GET", "/audit/verify", Perm.AUDIT_READ)
    def verify_audit() -> dict[str, Any]:
        result = hub.audit_verify()
        return {"ok": result.ok, "entries": result.entries, "problems": result.problems}

    @route("GET", "/dead-letters", Perm.INGEST_READ)
    def dead_letters(limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
        with hub.sessions() as session:
            rows = (
                session.execute(select(DeadLetter).order_by(DeadLetter.id.desc()).limit(limit))
                .scalars()
                .all()
            )
            return {
                "dead_letters": [
                    {
                        "id": d.id,
                        "received_at": d.received_at.isoformat(),
                        "source": d.source,
                        "topic": d.topic,
                        "reason": d.reason,
                        "detail": d.detail,
                    }
                    for d in rows
                ]
            }

    @route("POST", "/admin/retention", Perm.SYSTEM_ADMIN)
    def retention_now(request: Request) -> dict[str, Any]:
        return {"sites": hub.retention_once(actor=principal(request).username)}

    # ------------------------------------------------------------------ ingest
    @route("POST", "/ingest", "sensor", status_code=202)
    async def ingest(request: Request, payload: Annotated[dict[str, Any], Body()]) -> JSONResponse:
        """An ``EventMessage`` or ``StatusMessage`` from the sensor the bearer token names."""
        sensor: SensorInfo = request.state.sensor
        raw = json.dumps(payload).encode("utf-8")
        kind = "events" if payload.get("kind") == "event" else "status"
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        await hub.submit(
            Envelope(
                source="http",
                topic=f"ouie/v1/{sensor.site}/{sensor.sensor_id}/{kind}",
                payload=raw,
                outcome=future,
                authenticated_sensor=(sensor.site, sensor.sensor_id),
            )
        )
        try:
            outcome = await asyncio.wait_for(future, 30.0)
        except TimeoutError:
            return JSONResponse({"outcome": "pending"}, status_code=503)
        if outcome.startswith("rejected:"):
            return JSONResponse(
                {"outcome": "rejected", "reason": outcome.split(":", 1)[1]}, status_code=422
            )
        return JSONResponse({"outcome": outcome}, status_code=202 if outcome == "accepted" else 200)

    # ------------------------------------------------------------------ verification
    try:  # camera cue, drone dispatch (issue 8); needs the `verify` extra
        from ouie.hub.verification import register_routes
    except ImportError:
        pass
    else:
        register_routes(route, hub)

    @app.get(
        "/metrics",
        response_class=PlainTextResponse,
        dependencies=[Depends(guard_for(Perm.METRICS_READ))],
        openapi_extra={ACCESS_KEY: Perm.METRICS_READ.value},
    )
    def metrics() -> Response:
        return Response(hub.metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get(
        "/health", dependencies=[Depends(guard_for("public"))], openapi_extra={ACCESS_KEY: "public"}
    )
    def root_health() -> dict[str, str]:
        return {"status": "ok"}

    from ouie.web import mount_web  # operator console and public page (skipped without jinja2)

    mount_web(app, hub)
    return app


def _aware(value: datetime) -> datetime:
    from datetime import UTC

    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def iter_audit_export(hub: Hub) -> Iterator[str]:
    with hub.sessions() as session:
        yield from audit.export_jsonl(session)
