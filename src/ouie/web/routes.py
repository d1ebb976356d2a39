"""The operator console (``/console``) and the public transparency page (``/public``).

Pages are rendered on the server (Jinja2) from the hub's database; small plain JavaScript
modules add the live parts. Every state change the console makes — acknowledging, feedback,
thresholds, users — is a call to the hub's own API (``/api/v1``) with the session cookie and
the ``X-CSRF-Token`` header, so the console can do nothing an API client could not, and the
same permission table and audit log apply. Console pages check the same permissions as the
API routes behind them; a visitor without a session is sent to the login page, a user
without the permission gets a 403 page. Reads of incident data are audited like the API's.
Who is asking is answered by the hub (``ouie.hub.routers.deps.identify``, the function the
API's guard uses), and pages read through the hub's services and ``ouie.web.data``, never
the ORM directly.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlparse

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from sqlalchemy.orm import Session
from starlette.routing import Match

from ouie.config.compliance import ComplianceSettings
from ouie.config.web import WebSettings, web_settings
from ouie.core.geometry import distance_m
from ouie.core.labels import EVENT_LABELS
from ouie.core.timebase import utc_now
from ouie.hub import audit, auth, experiment, incidents, user_admin
from ouie.hub.auth import Perm, Principal
from ouie.hub.equipment import equipment
from ouie.hub.incidents import STATES
from ouie.hub.public_counts import published_until, suppressed
from ouie.hub.routers.deps import ACCESS_KEY, CSRF_HEADER, identify
from ouie.hub.schemas import UserChangeView, UserView
from ouie.hub.service import Hub
from ouie.web import data, plots
from ouie.web.claims import public_claims
from ouie.web.geo import SitePlan, load_plan
from ouie.web.i18n import LANGS, Lang, js_strings, pick_lang, translator

HERE = Path(__file__).parent
LANG_COOKIE = "ouie_lang"
STATIC_PREFIX = "/console/static"

#: Routes the console serves without login (the hub's route-walking test adds them to its
#: allowlist of public routes).
PUBLIC_PATHS = frozenset({"/", "/login", "/lang/{code}", "/public", "/public/map.json"})

#: Menu entries: (key, path, permission that shows it).
MENU: tuple[tuple[str, str, Perm], ...] = (
    ("nav.map", "/console/", Perm.INCIDENTS_READ),
    ("nav.incidents", "/console/incidents", Perm.INCIDENTS_READ),
    ("nav.sensors", "/console/sensors", Perm.SENSORS_READ),
    ("nav.stats", "/console/stats", Perm.STATS_READ),
    ("nav.audit", "/console/audit", Perm.AUDIT_READ),
    ("nav.admin", "/console/admin", Perm.USERS_ADMIN),
)

#: API routes the verification actions (issue 8) are expected at; the incident page shows a
#: button only when the hub has the route.
VERIFY_ROUTES = {
    "camera_cue": "/api/v1/incidents/{incident_id}/camera-cue",
    "drone_plan": "/api/v1/incidents/{incident_id}/drone-missions",
    "drone_approve": "/api/v1/drone-missions/{mission_id}/approve",
    "drone_abort": "/api/v1/drone-missions/{mission_id}/abort",
}


class Redirect(Exception):
    def __init__(self, url: str) -> None:
        self.url = url


class Unauthenticated(Exception):
    """No session and not a browser navigation: answer 401 like the API."""


class Forbidden(Exception):
    def __init__(self, page: Page) -> None:
        self.page = page


@dataclass
class Page:
    """Per-request page context: who, which language, and the helpers templates use."""

    request: Request
    principal: Principal | None
    lang: Lang
    expires_at: datetime | None

    @property
    def t(self) -> Callable[..., str]:
        return translator(self.lang)


#: where a login or a language switch may send the browser next: the console and the public
#: page, nothing else (issue 18: ``next=/%5Cevil.example/phish`` left the site, since
#: browsers read ``/\evil.example`` as ``//evil.example``)
NEXT_PREFIXES = ("/console", "/public", "/login")
_NEXT_CHARS = re.compile(r"^[A-Za-z0-9/_.~%!$&'()*+,;=:@?-]{1,1000}$")


def _safe_next(value: str | None) -> str:
    """``value`` if it is a path of this site under ``NEXT_PREFIXES``, else the console.

    Strict on purpose: printable URL characters only (no backslash, space or control
    character), no ``//`` anywhere in the path, no scheme or host, no dot segment, and the
    same after one round of percent-decoding, so a browser's own decoding cannot turn it
    into another site's address."""
    fallback = "/console/"
    if not value or not _NEXT_CHARS.match(value):
        return fallback
    for form in (value, unquote(value)):
        if "\\" in form or any(ord(c) < 0x20 or ord(c) == 0x7F for c in form):
            return fallback
        parsed = urlparse(form)
        path = parsed.path
        if parsed.scheme or parsed.netloc or not path.startswith("/") or "//" in path:
            return fallback
        if any(part in {".", ".."} for part in path.split("/")):
            return fallback
        if not any(path == p or path.startswith(p + "/") for p in NEXT_PREFIXES):
            return fallback
    return value


def _parse_date(value: str | None) -> date | None:
    if not value:
        return None
    try:
        parsed = date.fromisoformat(value[:10])
    except ValueError:
        return None
    # a filter date past these bounds overflows when a day is added (a 500, issue 18)
    return parsed if date(1970, 1, 1) <= parsed <= date(8999, 12, 31) else None


def _fmt_duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "—"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


class WebApp:
    """Routes of the console and the public page for one hub."""

    def __init__(self, app: FastAPI, hub: Hub, settings: WebSettings) -> None:
        self.app = app
        self.hub = hub
        self.settings = settings
        compliance = getattr(hub.settings, "compliance", None)
        if compliance is None:
            try:
                from ouie.config.compliance import ComplianceSettings

                compliance = ComplianceSettings()
            except ImportError:  # pragma: no cover - the privacy pack ships with ouie
                compliance = None
        self.compliance = compliance
        self.plan: SitePlan = load_plan(settings.site, getattr(compliance, "zone", None))
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        env = self.templates.env
        env.globals["labels"] = [label.value for label in EVENT_LABELS]
        env.globals["states"] = list(STATES)
        env.globals["colours"] = plots.LABEL_COLOURS
        env.globals["static"] = STATIC_PREFIX
        env.filters["duration"] = _fmt_duration
        env.filters["tojson_attr"] = lambda v: Markup(json.dumps(v, ensure_ascii=False))
        self.router = APIRouter(include_in_schema=False)
        self._register()

    # -- plumbing ------------------------------------------------------------------------
    def _session_info(self, request: Request) -> tuple[Principal | None, datetime | None]:
        """Who is asking, as the API's guard sees it (bearer API token or session cookie),
        with the session's expiry time for the latter."""
        found = identify(self.hub, request)
        return found, found.expires_at if found is not None else None

    def _lang(self, request: Request) -> Lang:
        return pick_lang(
            request.cookies.get(LANG_COOKIE),
            request.headers.get("accept-language"),
            self.settings.default_lang,
        )

    def page(self, request: Request, perm: Perm | None) -> Page:
        """The page context; raises ``Redirect`` to log in or ``Forbidden``."""
        who, expires = self._session_info(request)
        lang = self._lang(request)
        if perm is not None:
            if who is None:
                if "text/html" not in request.headers.get("accept", ""):
                    raise Unauthenticated()
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                raise Redirect(f"/login?next={quote(target, safe='')}")
            if not who.can(perm):
                raise Forbidden(Page(request, who, lang, expires))
        return Page(request, who, lang, expires)

    def render(
        self, page: Page, template: str, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        who = page.principal
        menu = [
            {
                "key": key,
                "path": path,
                "active": page.request.url.path == path
                or (path != "/console/" and page.request.url.path.startswith(path)),
            }
            for key, path, perm in MENU
            if who is not None and who.can(perm)
        ]
        ctx: dict[str, Any] = {
            "t": page.t,
            "lang": page.lang,
            "langs": LANGS,
            "who": who,
            "can": (lambda p: who is not None and who.can(Perm(p))),
            "menu": menu,
            "csrf": who.csrf_token if who else "",
            "csrf_header": CSRF_HEADER,
            "expires_at": page.expires_at.isoformat() if page.expires_at else "",
            "warn_s": self.settings.session_warning_s,
            "js_strings": js_strings(page.lang),
            "path": page.request.url.path
            + (f"?{page.request.url.query}" if page.request.url.query else ""),
            "high_priority": [label.value for label in self.settings.high_priority],
            **context,
        }
        return self.templates.TemplateResponse(
            page.request,
            template,
            ctx,
            status_code=status_code,
            headers={"Cache-Control": "no-store"},
        )

    def _audit_read(self, session: Session, who: Principal, action: str, object_id: str) -> None:
        self.hub.record_read(session, who.username, action, object_id, via="console")

    def _has_route(self, path: str, method: str = "POST") -> bool:
        """Whether the app answers ``method path`` (routes added directly or by a router)."""
        concrete = re.sub(r"\{[^}]+\}", "x", path)
        scope = {"type": "http", "path": concrete, "method": method, "root_path": ""}
        for route in self.app.routes:
            match, _ = route.matches(scope)
            if match == Match.FULL:
                return True
        return False

    # -- routes ------------------------------------------------------------------------
    def _register(self) -> None:
        r = self.router

        def guarded(perm: Perm | None) -> Callable[[Any], Any]:
            """Run a page handler; turn Redirect/Forbidden into responses."""

            def wrap(fn: Callable[..., Response]) -> Callable[..., Response]:
                def handler(request: Request) -> Response:
                    try:
                        page = self.page(request, perm)
                        return fn(page)
                    except Redirect as exc:
                        return RedirectResponse(exc.url, status_code=303)
                    except Unauthenticated:
                        return JSONResponse(
                            {"detail": "authentication required"},
                            401,
                            {"WWW-Authenticate": "Bearer"},
                        )
                    except Forbidden as exc:
                        return self.render(
                            exc.page, "error.html", status_code=403, message_key="error.forbidden"
                        )

                handler.__name__ = fn.__name__
                return handler

            return wrap

        def add(path: str, perm: Perm | None, fn: Callable[[Page], Response]) -> None:
            r.add_api_route(
                path,
                guarded(perm)(fn),
                methods=["GET"],
                openapi_extra={ACCESS_KEY: str(perm) if perm else "public"},
                response_class=HTMLResponse,
            )

        @r.get("/", openapi_extra={ACCESS_KEY: "public"})
        def root() -> RedirectResponse:
            return RedirectResponse("/console/", status_code=303)

        @r.get(
            "/login",
            response_class=HTMLResponse,
            response_model=None,
            openapi_extra={ACCESS_KEY: "public"},
        )
        def login(request: Request, next: str = "/console/", out: int = 0) -> Response:
            page = self.page(request, None)
            if page.principal is not None and page.expires_at is not None:
                return RedirectResponse(_safe_next(next), status_code=303)
            return self.render(page, "login.html", next=_safe_next(next), logged_out=bool(out))

        @r.get("/lang/{code}", openapi_extra={ACCESS_KEY: "public"})
        def set_lang(code: str, next: str = "/console/") -> RedirectResponse:
            response = RedirectResponse(_safe_next(next), status_code=303)
            if code in LANGS:
                response.set_cookie(
                    LANG_COOKIE, code, max_age=365 * 86400, samesite="lax", path="/"
                )
            return response

        add("/console/", Perm.INCIDENTS_READ, self.map_page)
        add("/console/incidents", Perm.INCIDENTS_READ, self.incidents_page)
        add("/console/incidents/{incident_id}", Perm.INCIDENTS_READ, self.incident_page)
        add("/console/sensors", Perm.SENSORS_READ, self.sensors_page)
        add("/console/sensors/{site}/{sensor_id}", Perm.SENSORS_READ, self.sensor_page)
        add("/console/stats", Perm.STATS_READ, self.stats_page)
        add("/console/audit", Perm.AUDIT_READ, self.audit_page)
        add("/console/admin", Perm.USERS_ADMIN, self.admin_page)
        if self.settings.public_page:
            add("/public", None, self.public_page)

        def add_json(path: str, perm: Perm | None, fn: Callable[[Page], Any]) -> None:
            def handler(request: Request) -> Response:
                who, _ = self._session_info(request)
                if perm is not None:
                    if who is None:
                        return JSONResponse(
                            {"detail": "authentication required"},
                            401,
                            {"WWW-Authenticate": "Bearer"},
                        )
                    if not who.can(perm):
                        return JSONResponse({"detail": f"role {who.role} lacks {perm}"}, 403)
                page = Page(request, who, self._lang(request), None)
                return JSONResponse(fn(page), headers={"Cache-Control": "no-store"})

            handler.__name__ = fn.__name__
            r.add_api_route(
                path,
                handler,
                methods=["GET"],
                openapi_extra={ACCESS_KEY: str(perm) if perm else "public"},
            )

        add_json("/console/map.json", Perm.INCIDENTS_READ, self.map_data)
        add_json("/console/sensors.json", Perm.SENSORS_READ, self.sensors_data)
        add_json(
            "/console/sensors/{site}/{sensor_id}/live.json", Perm.SENSORS_READ, self.sensor_live
        )
        if self.settings.public_page:
            add_json("/public/map.json", None, self.public_map_data)

    # -- pages ---------------------------------------------------------------------------
    def _plan_json(self, public: bool = False) -> dict[str, Any]:
        plan = self.plan
        out: dict[str, Any] = {
            "name": plan.name,
            "features": plan.features,
            "zones": [{"name": z.name, "polygon": list(z.polygon)} for z in plan.zones],
            "origin": plan.origin,
            "tile_url": self.settings.tile_url,
            "tile_attribution": self.settings.tile_attribution,
        }
        if not public:  # the hub's registry (verify.yaml), never the site plan
            kit = equipment(self.hub)
            out["cameras"] = [
                c.model_dump(include={"id", "lat", "lon", "heading_deg", "fov_deg", "range_m"})
                for c in kit.cameras
            ]
            out["docks"] = [d.model_dump(include={"id", "lat", "lon"}) for d in kit.docks]
        return out

    def map_data(self, page: Page) -> dict[str, Any]:
        assert page.principal is not None
        now = utc_now()
        with self.hub.sessions() as session, session.begin():
            sensors = data.sensors(session, now, self.hub.settings.ingest.stale_after_s)
            rows = data.open_incidents(session, self.plan)
            self._audit_read(session, page.principal, "incident.list", "*")
        return {
            "plan": self._plan_json(),
            "sensors": sensors,
            "incidents": [row.model_dump(mode="json") for row in rows],
        }

    def sensors_data(self, page: Page) -> dict[str, Any]:
        with self.hub.sessions() as session:
            return {
                "sensors": data.sensors(session, utc_now(), self.hub.settings.ingest.stale_after_s)
            }

    def map_page(self, page: Page) -> Response:
        return self.render(page, "map.html")

    def incidents_page(self, page: Page) -> Response:
        q = page.request.query_params
        label = q.get("label", "")
        state = q.get("state", "")
        flt = data.IncidentFilter(
            label=label if label in {lbl.value for lbl in EVENT_LABELS} else "",
            state=state if state in {*STATES, "open"} else "",
            since=_parse_date(q.get("since")),
            until=_parse_date(q.get("until")),
            zone=q.get("zone", "")[:200],
        )
        assert page.principal is not None
        with self.hub.sessions() as session, session.begin():
            rows = data.incident_list(session, flt, self.plan)
            sites = data.sites(session)
            self._audit_read(session, page.principal, "incident.list", "*")
        return self.render(
            page,
            "incidents.html",
            incidents=[row.model_dump(mode="json") for row in rows],
            flt=flt.as_params(),
            zones=self.plan.zone_names(sites),
        )

    def incident_page(self, page: Page) -> Response:
        incident_id = str(page.request.path_params["incident_id"])[:64]
        assert page.principal is not None
        with self.hub.sessions() as session, session.begin():
            try:
                incidents.get(session, incident_id)
            except incidents.NotFound:
                return self.render(page, "error.html", 404, message_key="error.not_found")
            # the read is audited first, so the trail on the page includes this very read
            self._audit_read(session, page.principal, "incident.read", incident_id)
            detail = data.incident_detail(session, incident_id, self.plan)
            assert detail is not None  # it existed a moment ago, in this transaction
        cameras: list[dict[str, Any]] = [
            {
                "id": c.id,
                "distance_m": distance_m(detail.lat, detail.lon, c.lat, c.lon),
                "range_m": c.range_m,
            }
            for c in equipment(self.hub).cameras  # the ones the verify API can cue
        ]
        cameras.sort(key=lambda c: float(c["distance_m"]))
        verify = {
            name: path.replace("{incident_id}", incident_id)
            for name, path in VERIFY_ROUTES.items()
            if self.hub.verification is not None and self._has_route(path)
        }
        return self.render(
            page,
            "incident.html",
            incident=detail.model_dump(mode="json"),
            cameras=cameras,
            verify=verify,
            plan=self._plan_json(),
        )

    def sensors_page(self, page: Page) -> Response:
        with self.hub.sessions() as session:
            rows = data.sensors(session, utc_now(), self.hub.settings.ingest.stale_after_s)
        return self.render(page, "sensors.html", sensors=rows)

    def sensor_page(self, page: Page) -> Response:
        site = str(page.request.path_params["site"])[:64]
        sensor_id = str(page.request.path_params["sensor_id"])[:64]
        with self.hub.sessions() as session:
            detail = data.sensor_detail(
                session, site, sensor_id, utc_now(), self.hub.settings.ingest.stale_after_s
            )
        if detail is None:
            return self.render(page, "error.html", 404, message_key="error.not_found")
        sparks = {
            label: plots.sparkline(
                [v for _, v in series],
                colour=plots.LABEL_COLOURS.get(label, "#1f5fa8"),
                title=page.t(f"label.{label}"),
            )
            for label, series in detail["scores"].items()
        }
        return self.render(page, "sensor.html", sensor=detail, sparks=sparks)

    def sensor_live(self, page: Page) -> dict[str, Any]:
        site = str(page.request.path_params["site"])[:64]
        sensor_id = str(page.request.path_params["sensor_id"])[:64]
        with self.hub.sessions() as session:
            detail = data.sensor_detail(
                session, site, sensor_id, utc_now(), self.hub.settings.ingest.stale_after_s
            )
        if detail is None:
            return {"error": "not found"}
        detail.pop("recent", None)
        return detail

    def stats_page(self, page: Page) -> Response:
        try:
            days = max(1, min(int(page.request.query_params.get("days", "14")), 365))
        except ValueError:
            days = 14
        now = utc_now()
        t = page.t
        with self.hub.sessions() as session:
            categories, series = data.daily_series(session, days, now)
            precision = incidents.precision_stats(session, now - timedelta(days=days))
            durations = data.response_durations(session, now - timedelta(days=days))
        names = {label: t(f"label.{label}") for label in series}
        per_day = plots.stacked_bars(categories, series, names, t("stats.per_day"))
        label_rows = [
            (names.get(k, k), v["precision"], v["true_alarm"] + v["false_alarm"] + v["unsure"])
            for k, v in precision["per_label"].items()
        ]
        label_colours = {
            names.get(k, k): plots.LABEL_COLOURS.get(k, "#1f5fa8") for k in precision["per_label"]
        }
        sensor_rows = [
            (k.split("/", 1)[-1], v["precision"], v["true_alarm"] + v["false_alarm"] + v["unsure"])
            for k, v in precision["per_sensor"].items()
        ]
        by_label = plots.precision_bars(label_rows, t("stats.precision_label"), label_colours)
        by_sensor = plots.precision_bars(sensor_rows, t("stats.precision_sensor"))
        response = plots.response_histogram(
            {t("stats.to_ack"): durations["ack"], t("stats.to_close"): durations["end"]},
            t("stats.response"),
        )
        summary = {
            "ack_median": data.quantile(durations["ack"], 0.5),
            "ack_p90": data.quantile(durations["ack"], 0.9),
            "end_median": data.quantile(durations["end"], 0.5),
            "end_p90": data.quantile(durations["end"], 0.9),
            "ack_n": len(durations["ack"]),
            "end_n": len(durations["end"]),
        }
        return self.render(
            page,
            "stats.html",
            days=days,
            per_day=per_day,
            by_label=by_label,
            by_sensor=by_sensor,
            response=response,
            summary=summary,
            total=sum(sum(v) for v in series.values()),
            precision=precision,
            experiment=self._experiment_progress(now),
        )

    def _experiment_progress(self, now: datetime) -> experiment.ExperimentProgress | None:
        """The experiment's success and stop criteria against the feedback so far (issue 20);
        None when no experiment is configured."""
        exp = getattr(self.compliance, "experiment", None)
        if exp is None:
            return None
        sensors = len(getattr(self.compliance, "sensors", []) or []) or len(
            list(self.hub.registry.all())
        )
        since = datetime.combine(
            exp.phases.evaluation if exp.phases is not None else exp.start, time(0), UTC
        )
        with self.hub.sessions() as session:
            ack = data.quantile(data.response_durations(session, since)["ack"], 0.5)
            return experiment.progress(session, exp, sensors, now, ack)

    def audit_page(self, page: Page) -> Response:
        action = re.sub(r"[^a-z_.]", "", page.request.query_params.get("action", ""))[:40]
        assert page.principal is not None
        with self.hub.sessions() as session, session.begin():
            rows = data.recent_audit(session, 300, action)
            audit.record(
                session,
                audit.AuditEvent(
                    page.principal.username,
                    "audit.read",
                    "audit",
                    "console",
                    {"count": len(rows)},
                ),
            )
        result = self.hub.audit_verify()
        entries = [row.model_dump(mode="json") for row in rows]
        return self.render(page, "audit.html", entries=entries, verify=result, action=action)

    def admin_page(self, page: Page) -> Response:
        now = utc_now()
        with self.hub.sessions() as session:
            users = [UserView.of(u).model_dump(mode="json") for u in auth.list_users(session)]
            sensors = data.sensors(session, now, self.hub.settings.ingest.stale_after_s)
            # changes waiting for a second admin (ouie.hub.user_admin, issue 18)
            changes = [
                UserChangeView.of(row).model_dump(mode="json")
                for row in user_admin.pending(session, now)
            ]
        retention = self.hub.settings.retention
        return self.render(
            page,
            "admin.html",
            users=users,
            changes=changes,
            roles=[role.value for role in auth.Role],
            sensors=sensors,
            cameras=equipment(self.hub).cameras,
            docks=equipment(self.hub).docks,
            retention={"days": retention.days, "per_site": retention.per_site},
        )

    # -- public --------------------------------------------------------------------------
    def _public_context(self) -> dict[str, Any]:
        now = utc_now()
        compliance = self.compliance
        # whole days at least `delay_h` old, small counts suppressed (ouie.hub.public_counts)
        counts = self.settings.public_counts
        until = published_until(now, counts)
        with self.hub.sessions() as session:
            sensors = [
                {"id": s["id"], "lat": s["lat"], "lon": s["lon"], "mounting": s["mounting"]}
                for s in data.sensors(session, now, self.hub.settings.ingest.stale_after_s)
            ]
            weeks, raw = data.weekly_counts(session, 8, until - timedelta(microseconds=1), until)
        series = {label: [suppressed(n, counts) for n in row] for label, row in raw.items()}
        zone_name = (
            getattr(getattr(compliance, "zone", None), "name", None)
            or self.plan.name
            or ", ".join(sorted({s.site for s in self.hub.registry.all()}))
            or "—"
        )
        return {
            "sensors": sensors,
            "weeks": weeks,
            "series": series,
            "zone_name": zone_name,
            "generated_at": now.isoformat(),
            "counts_until": until.isoformat(),
            "min_count": counts.min_count,
        }

    def public_page(self, page: Page) -> Response:
        ctx = self._public_context()
        compliance = self.compliance
        retention = self.hub.settings.retention
        days = max([retention.days, *retention.per_site.values()])
        t = page.t
        names = {label: t(f"label.{label}") for label in ctx["series"]}
        drawn = {label: [n or 0 for n in row] for label, row in ctx["series"].items()}
        chart = plots.stacked_bars(
            ctx["weeks"], drawn, names, t("public.counts"), width=1000, height=240
        )
        dpia = _dpia_summary(self.hub, compliance, page.lang, names)
        hours = list(getattr(getattr(compliance, "zone", None), "hours", []) or [])
        return self.render(
            page,
            "public.html",
            public=ctx,
            chart=chart,
            compliance=compliance,
            retention_days=days,
            dpia=dpia,
            hours=hours,
            # the signed audit head, for anyone to record (issue 18, ouie.hub.anchor)
            anchor=self.hub.anchor_publication(),
        )

    def public_map_data(self, page: Page) -> dict[str, Any]:
        ctx = self._public_context()
        return {"plan": self._plan_json(public=True), "sensors": ctx["sensors"]}


def _dpia_summary(hub: Hub, compliance: Any, lang: Lang, names: dict[str, str]) -> list[str]:
    """The DPIA's headline points for the public: zone (its area on the ellipsoid) and hours,
    then the claims generated from the running configuration (``ouie.web.claims``: who sees
    incidents and how the audit log is kept, cameras, retention, counts, the experiment),
    and the main risks with their measures."""
    t = translator(lang)
    lines: list[str] = []
    zone = getattr(compliance, "zone", None)
    if zone is not None:
        area_m2, _ = zone.area_perimeter_m()
        lines.append(
            t(
                "dpia.zone",
                name=zone.name,
                area=f"{area_m2 / 10_000:.1f}",
                hours=f"{zone.hours_per_day():g}",
            )
        )
    cueing = getattr(getattr(hub.verification, "settings", None), "cueing", None)
    auto_cue = list(getattr(cueing, "auto_cue_labels", None) or [])
    comp = compliance if isinstance(compliance, ComplianceSettings) else None
    lines += [c.text for c in public_claims(hub.settings, comp, lang, auto_cue, names)]
    lines += [t(f"dpia.{key}") for key in ("creep", "breach")]
    return lines


def mount(app: FastAPI, hub: Hub) -> bool:
    if getattr(app.state, "web", None) is not None:
        return True  # already mounted (create_hub_app mounts it; callers may ask again)
    settings = web_settings(hub.settings)
    if not settings.enabled:
        return False
    web = WebApp(app, hub, settings)
    # added to the app's own route list (not an included router), so tests that walk
    # ``app.routes`` check the console's access rules like the API's
    app.router.routes.extend(web.router.routes)
    app.mount(STATIC_PREFIX, StaticFiles(directory=str(HERE / "static")), name="web-static")
    app.state.web = web
    return True
