"""A small ONVIF PTZ camera on loopback: real SOAP 1.2 over HTTP, WS-Security digest auth.

It implements the device, media and PTZ service operations ouie uses, with the message
shapes of the ONVIF WSDLs (so a stock SOAP client such as zeep / onvif-zeep-async parses
the answers), and records every call with its arguments so tests can check the exact
pan/tilt/zoom a client asked for.

Operations:

- device (``/onvif/device_service``): GetSystemDateAndTime (no auth, as the ONVIF
  access policy allows), GetServices, GetCapabilities;
- media (``/onvif/media_service``): GetProfiles, GetSnapshotUri, GetStreamUri;
- PTZ (``/onvif/ptz_service``): GetPresets, GotoPreset, AbsoluteMove, GetStatus;
- ``GET /snapshot.jpg``: a tiny JPEG (what GetSnapshotUri points at).

Authentication: WS-Security UsernameToken with ``PasswordDigest`` =
Base64(SHA-1(nonce + created + password)); ``Created`` must be within ``max_skew_s`` of
the device clock and a nonce is accepted once. Anything else gets a SOAP
``ter:NotAuthorized`` sender fault with HTTP 400 (ONVIF Core §5.12). Positions live in
the generic spaces (pan, tilt in [-1, 1], zoom in [0, 1]); a move takes ``move_time_s``
(MoveStatus MOVING, position interpolated) and then reports IDLE at the target.

Used by the tests (``tests/verify``), ``ouie bench verify`` and ``ouie demo``; it binds to
127.0.0.1 only.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from xml.sax.saxutils import escape, quoteattr

SOAP_ENV = "http://www.w3.org/2003/05/soap-envelope"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
DIGEST_TYPE = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
    "#PasswordDigest"
)
TDS = "http://www.onvif.org/ver10/device/wsdl"
TRT = "http://www.onvif.org/ver10/media/wsdl"
TPTZ = "http://www.onvif.org/ver20/ptz/wsdl"
TT = "http://www.onvif.org/ver10/schema"
PAN_TILT_SPACE = "http://www.onvif.org/ver10/tptz/PanTiltSpaces/PositionGenericSpace"
ZOOM_SPACE = "http://www.onvif.org/ver10/tptz/ZoomSpaces/PositionGenericSpace"
PROFILE_TOKEN = "profile_1"
NO_AUTH_OPERATIONS = frozenset({"GetSystemDateAndTime"})

# A JPEG-framed placeholder (SOI, JFIF APP0, EOI): what the snapshot URL serves.
SNAPSHOT_JPEG = bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffd9")


@dataclass(frozen=True)
class DevicePreset:
    token: str
    name: str
    pan: float
    tilt: float
    zoom: float = 0.0


@dataclass(frozen=True)
class RecordedCall:
    """One SOAP request the device answered (or refused)."""

    service: str
    operation: str
    args: dict[str, Any]
    username: str | None
    authenticated: bool
    at: float = field(default_factory=time.monotonic)


@dataclass
class _Motion:
    start: tuple[float, float, float]
    target: tuple[float, float, float]
    started: float
    duration: float

    def position(self, now: float) -> tuple[tuple[float, float, float], bool]:
        if self.duration <= 0.0 or now >= self.started + self.duration:
            return self.target, False
        f = (now - self.started) / self.duration
        pos = tuple(a + (b - a) * f for a, b in zip(self.start, self.target, strict=True))
        return (pos[0], pos[1], pos[2]), True


def password_digest(nonce: bytes, created: str, password: str) -> str:
    """WS-Security UsernameToken profile 1.0 ``PasswordDigest``."""
    raw = hashlib.sha1(nonce + created.encode("utf-8") + password.encode("utf-8")).digest()
    return base64.b64encode(raw).decode("ascii")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(node: ET.Element | None, name: str) -> ET.Element | None:
    if node is None:
        return None
    for item in node:
        if _local(item.tag) == name:
            return item
    return None


def _text(node: ET.Element | None, name: str) -> str | None:
    found = _child(node, name)
    return None if found is None or found.text is None else found.text.strip()


class AuthError(Exception):
    pass


class OnvifPtzDevice:
    """The device. ``start()`` binds ``127.0.0.1:<port>`` (0: a free port) in a thread."""

    def __init__(
        self,
        username: str = "admin",
        password: str = "ouie-test-password",
        *,
        port: int = 0,
        presets: list[DevicePreset] | None = None,
        move_time_s: float = 0.0,
        max_skew_s: float = 300.0,
        require_auth: bool = True,
    ) -> None:
        self.username = username
        self.password = password
        self.presets = {p.token: p for p in (presets or [])}
        self.move_time_s = move_time_s
        self.max_skew_s = max_skew_s
        self.require_auth = require_auth
        self.calls: list[RecordedCall] = []
        self.auth_failures = 0
        self._lock = threading.Lock()
        self._nonces: set[bytes] = set()
        self._motion = _Motion((0.0, 0.0, 0.0), (0.0, 0.0, 0.0), 0.0, 0.0)
        self._moved = threading.Condition(self._lock)
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> OnvifPtzDevice:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> OnvifPtzDevice:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- state for tests ------------------------------------------------------------------

    def position(self) -> tuple[float, float, float]:
        with self._lock:
            return self._motion.position(time.monotonic())[0]

    def calls_of(self, operation: str) -> list[RecordedCall]:
        with self._lock:
            return [c for c in self.calls if c.operation == operation]

    def wait_for_call(self, operation: str, count: int = 1, timeout_s: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout_s
        with self._moved:
            while sum(1 for c in self.calls if c.operation == operation) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._moved.wait(left)
        return True

    # -- SOAP -----------------------------------------------------------------------------

    def _check_auth(self, header: ET.Element | None) -> str:
        security = _child(header, "Security")
        token = _child(security, "UsernameToken")
        if token is None:
            raise AuthError("no UsernameToken")
        user = _text(token, "Username") or ""
        password_el = _child(token, "Password")
        nonce_b64 = _text(token, "Nonce")
        created = _text(token, "Created")
        if password_el is None or nonce_b64 is None or created is None:
            raise AuthError("incomplete UsernameToken")
        if password_el.get("Type", DIGEST_TYPE) != DIGEST_TYPE:
            raise AuthError("only PasswordDigest is accepted")
        try:
            nonce = base64.b64decode(nonce_b64, validate=True)
            when = datetime.fromisoformat(created.replace("Z", "+00:00"))
        except ValueError as exc:
            raise AuthError("malformed nonce or created") from exc
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        if abs((datetime.now(UTC) - when).total_seconds()) > self.max_skew_s:
            raise AuthError("created outside the allowed clock skew")
        expected = password_digest(nonce, created, self.password)
        if user != self.username or (password_el.text or "").strip() != expected:
            raise AuthError("wrong username or password")
        with self._lock:
            if nonce in self._nonces:
                raise AuthError("nonce replayed")
            self._nonces.add(nonce)
        return user

    def handle_soap(self, path: str, body: bytes) -> tuple[int, str]:
        try:
            envelope = ET.fromstring(body)
        except ET.ParseError:
            return 400, _fault("env:Sender", "ter:WellFormed", "malformed XML")
        header = _child(envelope, "Header")
        soap_body = _child(envelope, "Body")
        if soap_body is None or len(soap_body) == 0:
            return 400, _fault("env:Sender", "ter:InvalidArgVal", "no SOAP body")
        request = soap_body[0]
        operation = _local(request.tag)
        service = {
            "/onvif/device_service": "device",
            "/onvif/media_service": "media",
            "/onvif/ptz_service": "ptz",
        }.get(path)
        if service is None:
            return 404, _fault("env:Sender", "ter:InvalidArgVal", f"no service at {path}")
        username: str | None = None
        authenticated = False
        if self.require_auth and operation not in NO_AUTH_OPERATIONS:
            try:
                username = self._check_auth(header)
                authenticated = True
            except AuthError as exc:
                with self._lock:
                    self.auth_failures += 1
                    self.calls.append(RecordedCall(service, operation, {}, None, False))
                return 400, _fault("env:Sender", "ter:NotAuthorized", f"not authorized: {exc}")
        handler = getattr(self, f"_op_{service}_{operation}", None)
        if handler is None:
            return 400, _fault(
                "env:Receiver", "ter:ActionNotSupported", f"{operation} not supported"
            )
        try:
            args, response = handler(request)
        except (ValueError, KeyError) as exc:
            return 400, _fault("env:Sender", "ter:InvalidArgVal", str(exc))
        with self._moved:
            self.calls.append(RecordedCall(service, operation, args, username, authenticated))
            self._moved.notify_all()
        return 200, _envelope(response)

    # device service

    def _op_device_GetSystemDateAndTime(self, request: ET.Element) -> tuple[dict[str, Any], str]:
        now = datetime.now(UTC)
        return {}, (
            f"<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime>"
            f"<tt:DateTimeType>NTP</tt:DateTimeType><tt:DaylightSavings>false</tt:DaylightSavings>"
            f"<tt:UTCDateTime><tt:Time><tt:Hour>{now.hour}</tt:Hour><tt:Minute>{now.minute}"
            f"</tt:Minute><tt:Second>{now.second}</tt:Second></tt:Time><tt:Date><tt:Year>"
            f"{now.year}</tt:Year><tt:Month>{now.month}</tt:Month><tt:Day>{now.day}</tt:Day>"
            f"</tt:Date></tt:UTCDateTime></tds:SystemDateAndTime>"
            f"</tds:GetSystemDateAndTimeResponse>"
        )

    def _xaddr(self, service: str) -> str:
        return f"{self.base_url}/onvif/{service}_service"

    def _op_device_GetServices(self, request: ET.Element) -> tuple[dict[str, Any], str]:
        parts = []
        for ns, name, major in ((TDS, "device", 2), (TRT, "media", 2), (TPTZ, "ptz", 2)):
            parts.append(
                f"<tds:Service><tds:Namespace>{ns}</tds:Namespace>"
                f"<tds:XAddr>{self._xaddr(name)}</tds:XAddr>"
                f"<tds:Version><tt:Major>{major}</tt:Major><tt:Minor>40</tt:Minor></tds:Version>"
                f"</tds:Service>"
            )
        include = _text(request, "IncludeCapability") or "false"
        return {"IncludeCapability": include == "true"}, (
            "<tds:GetServicesResponse>" + "".join(parts) + "</tds:GetServicesResponse>"
        )

    def _op_device_GetCapabilities(self, request: ET.Element) -> tuple[dict[str, Any], str]:
        categories = [c.text or "" for c in request if _local(c.tag) == "Category"]
        return {"Category": categories}, (
            "<tds:GetCapabilitiesResponse><tds:Capabilities>"
            f"<tt:Device><tt:XAddr>{self._xaddr('device')}</tt:XAddr></tt:Device>"
            f"<tt:Media><tt:XAddr>{self._xaddr('media')}</tt:XAddr>"
            "<tt:StreamingCapabilities><tt:RTPMulticast>false</tt:RTPMulticast>"
            "<tt:RTP_TCP>true</tt:RTP_TCP><tt:RTP_RTSP_TCP>true</tt:RTP_RTSP_TCP>"
            "</tt:StreamingCapabilities></tt:Media>"
            f"<tt:PTZ><tt:XAddr>{self._xaddr('ptz')}</tt:XAddr></tt:PTZ>"
            "</tds:Capabilities></tds:GetCapabilitiesResponse>"
        )

    # media service

    def _op_media_GetProfiles(self, request: ET.Element) -> tuple[dict[str, Any], str]:
        return {}, (
            f'<trt:GetProfilesResponse><trt:Profiles token="{PROFILE_TOKEN}" fixed="true">'
            "<tt:Name>main</tt:Name>"
            '<tt:PTZConfiguration token="ptz_config_1"><tt:Name>ptz</tt:Name>'
            "<tt:UseCount>1</tt:UseCount><tt:NodeToken>ptz_node_1</tt:NodeToken>"
            f"<tt:DefaultAbsolutePantTiltPositionSpace>{PAN_TILT_SPACE}"
            "</tt:DefaultAbsolutePantTiltPositionSpace>"
            f"<tt:DefaultAbsoluteZoomPositionSpace>{ZOOM_SPACE}"
            "</tt:DefaultAbsoluteZoomPositionSpace>"
            "</tt:PTZConfiguration></trt:Profiles></trt:GetProfilesResponse>"
        )

    def _profile(self, request: ET.Element) -> str:
        token = _text(request, "ProfileToken")
        if token != PROFILE_TOKEN:
            raise ValueError(f"unknown profile {token!r}")
        return token

    def _media_uri(self, uri: str) -> str:
        return (
            f"<trt:MediaUri><tt:Uri>{escape(uri)}</tt:Uri>"
            "<tt:InvalidAfterConnect>false</tt:InvalidAfterConnect>"
            "<tt:InvalidAfterReboot>false</tt:InvalidAfterReboot>"
            "<tt:Timeout>PT0S</tt:Timeout></trt:MediaUri>"
        )

    def _op_media_GetSnapshotUri(self, request: ET.Element) -> tuple[dict[str, Any], str]:
        token = self._profile(request)
        return {"ProfileToken": token}, (
            "<trt:GetSnapshotUriResponse>"
            + self._media_uri(f"{self.base_url}/snapshot.jpg")
            + "</trt:GetSnapshotUriResponse>"
        )

    def _op_media_GetStreamUri(self, request: ET.Element) -> tuple[dict[str, Any], str]:
        token = self._profile(request)
        setup = _child(request, "StreamSetup")
        stream = _text(setup, "Stream") or "RTP-Unicast"
        protocol = _text(_child(setup, "Transport"), "Protocol") or "RTSP"
        return {"ProfileToken": token, "Stream": stream, "Protocol": protocol}, (
            "<trt:GetStreamUriResponse>"
            + self._media_uri(f"rtsp://127.0.0.1:8554/{token}")
            + "</trt:GetStreamUriResponse>"
        )

    # PTZ service

    def _op_ptz_GetPresets(self, request: ET.Element) -> tuple[dict[str, Any], str]:
        token = self._profile(request)
        items = "".join(
            f"<tptz:Preset token={quoteattr(p.token)}><tt:Name>{escape(p.name)}</tt:Name>"
            f"<tt:PTZPosition>{_vector(p.pan, p.tilt, p.zoom)}</tt:PTZPosition></tptz:Preset>"
            for p in self.presets.values()
        )
        return {
            "ProfileToken": token
        }, f"<tptz:GetPresetsResponse>{items}</tptz:GetPresetsResponse>"

    def _start_move(self, target: tuple[float, float, float]) -> None:
        now = time.monotonic()
        with self._lock:
            current = self._motion.position(now)[0]
            self._motion = _Motion(current, target, now, self.move_time_s)

    def _op_ptz_GotoPreset(self, request: ET.Element) -> tuple[dict[str, Any], str]:
        token = self._profile(request)
        preset_token = _text(request, "PresetToken") or ""
        preset = self.presets.get(preset_token)
        if preset is None:
            raise ValueError(f"no preset {preset_token!r}")
        self._start_move((preset.pan, preset.tilt, preset.zoom))
        return {"ProfileToken": token, "PresetToken": preset_token}, ("<tptz:GotoPresetResponse/>")

    def _op_ptz_AbsoluteMove(self, request: ET.Element) -> tuple[dict[str, Any], str]:
        token = self._profile(request)
        position = _child(request, "Position")
        pan_tilt = _child(position, "PanTilt")
        zoom = _child(position, "Zoom")
        current = self.position()
        pan = float(pan_tilt.get("x", "")) if pan_tilt is not None else current[0]
        tilt = float(pan_tilt.get("y", "")) if pan_tilt is not None else current[1]
        zoom_x = float(zoom.get("x", "")) if zoom is not None else current[2]
        if not (-1.0 <= pan <= 1.0 and -1.0 <= tilt <= 1.0 and 0.0 <= zoom_x <= 1.0):
            raise ValueError("position outside the generic space")
        space = pan_tilt.get("space") if pan_tilt is not None else None
        if space not in (None, PAN_TILT_SPACE):
            raise ValueError(f"unsupported pan/tilt space {space}")
        self._start_move((pan, tilt, zoom_x))
        args = {
            "ProfileToken": token,
            "PanTilt": None if pan_tilt is None else {"x": pan, "y": tilt, "space": space},
            "Zoom": None if zoom is None else {"x": zoom_x},
            "raw": {
                "pan": None if pan_tilt is None else pan_tilt.get("x"),
                "tilt": None if pan_tilt is None else pan_tilt.get("y"),
                "zoom": None if zoom is None else zoom.get("x"),
            },
        }
        return args, "<tptz:AbsoluteMoveResponse/>"

    def _op_ptz_GetStatus(self, request: ET.Element) -> tuple[dict[str, Any], str]:
        token = self._profile(request)
        with self._lock:
            (pan, tilt, zoom), moving = self._motion.position(time.monotonic())
        state = "MOVING" if moving else "IDLE"
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return {"ProfileToken": token}, (
            "<tptz:GetStatusResponse><tptz:PTZStatus>"
            f"<tt:Position>{_vector(pan, tilt, zoom)}</tt:Position>"
            f"<tt:MoveStatus><tt:PanTilt>{state}</tt:PanTilt><tt:Zoom>{state}</tt:Zoom>"
            f"</tt:MoveStatus><tt:UtcTime>{now}</tt:UtcTime>"
            "</tptz:PTZStatus></tptz:GetStatusResponse>"
        )

    # HTTP

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        device = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                status, text = device.handle_soap(self.path.split("?", 1)[0], body)
                self._send(status, text.encode("utf-8"), "application/soap+xml; charset=utf-8")

            def do_GET(self) -> None:
                if self.path.split("?", 1)[0] == "/snapshot.jpg":
                    self._send(200, SNAPSHOT_JPEG, "image/jpeg")
                else:
                    self._send(404, b"not found", "text/plain")

        return Handler


def _vector(pan: float, tilt: float, zoom: float) -> str:
    return (
        f'<tt:PanTilt x="{pan!r}" y="{tilt!r}" space="{PAN_TILT_SPACE}"/>'
        f'<tt:Zoom x="{zoom!r}" space="{ZOOM_SPACE}"/>'
    )


def _envelope(body: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<env:Envelope xmlns:env="{SOAP_ENV}" xmlns:tds="{TDS}" xmlns:trt="{TRT}" '
        f'xmlns:tptz="{TPTZ}" xmlns:tt="{TT}">'
        f"<env:Body>{body}</env:Body></env:Envelope>"
    )


def _fault(code: str, subcode: str, reason: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<env:Envelope xmlns:env="{SOAP_ENV}" '
        'xmlns:ter="http://www.onvif.org/ver10/error">'
        f"<env:Body><env:Fault><env:Code><env:Value>{code}</env:Value>"
        f"<env:Subcode><env:Value>{subcode}</env:Value></env:Subcode></env:Code>"
        f'<env:Reason><env:Text xml:lang="en">{escape(reason)}</env:Text></env:Reason>'
        "</env:Fault></env:Body></env:Envelope>"
    )
