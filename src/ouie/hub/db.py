"""The hub's storage: SQLAlchemy 2 models, engines for SQLite and PostgreSQL, migrations.

The schema is owned by the Alembic migrations in ``ouie/hub/migrations`` (shipped inside the
package, so a pip-installed hub can migrate itself); ``migrate(engine)`` brings any database
to the latest revision, and a test checks that the migrations and these models agree.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, sessionmaker

BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class Sensor(Base):
    __tablename__ = "sensors"
    __table_args__ = (UniqueConstraint("site", "sensor_id", name="uq_sensors_site_sensor"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(String(64))
    sensor_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200), default="")
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    height_m: Mapped[float] = mapped_column(Float, default=0.0)
    mounting_height_m: Mapped[float] = mapped_column(Float, default=4.0)
    mounting: Mapped[str] = mapped_column(String(200), default="")
    calibration_db: Mapped[float | None] = mapped_column(Float, nullable=True)
    thresholds: Mapped[dict[str, float]] = mapped_column(JSON, default=dict)
    token_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    health: Mapped[str] = mapped_column(String(16), default="unknown")
    last_status: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    last_sequence: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: base64 Ed25519 public key its events and status must be signed with (issue 18);
    #: None: an unkeyed sensor, accepted only while ingest.require_signatures is false
    signing_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: SHA-256 of the client certificate issued with the key (shown, not enforced here:
    #: the broker checks the certificate)
    cert_fingerprint: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: ``sent_at`` of the last accepted status: an older or equal one is a replay
    last_status_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: which sequences below ``last_sequence`` were stored, a bitmap (``ouie.hub.trust.
    #: SequenceWindow``): a late event of a keyed sensor is stored once, a replay refused
    sequence_seen: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)

    rejections: Mapped[list[SensorRejection]] = relationship(
        order_by="SensorRejection.reason",
        cascade="all, delete-orphan",
        passive_deletes=True,
        lazy="selectin",
    )


class SensorRejection(Base):
    """Messages refused for one sensor and one reason (unsigned, bad_signature, replay, …),
    counted for the console; audited at most once per ``ingest.rejection_audit_interval_s``
    so a flood of forgeries cannot flood the audit chain."""

    __tablename__ = "sensor_rejections"

    sensor_pk: Mapped[int] = mapped_column(
        ForeignKey("sensors.id", ondelete="CASCADE"), primary_key=True
    )
    reason: Mapped[str] = mapped_column(String(32), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)
    first_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_detail: Mapped[str] = mapped_column(String(300), default="")
    audited_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    audited_count: Mapped[int] = mapped_column(BigInteger, default=0)


class Incident(Base):
    __tablename__ = "incidents"
    __table_args__ = (
        Index("ix_incidents_site_label_last", "site", "label", "last_onset"),
        Index("ix_incidents_state", "state"),
        Index("ix_incidents_created", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    site: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), default="new")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    first_onset: Mapped[datetime] = mapped_column(UTCDateTime)
    last_onset: Mapped[datetime] = mapped_column(UTCDateTime)
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    method: Mapped[str] = mapped_column(String(16))
    ellipse_major_m: Mapped[float | None] = mapped_column(Float, nullable=True)
    ellipse_minor_m: Mapped[float | None] = mapped_column(Float, nullable=True)
    ellipse_angle_deg: Mapped[float | None] = mapped_column(Float, nullable=True)
    radius_m: Mapped[float] = mapped_column(Float)
    residual_rms_m: Mapped[float | None] = mapped_column(Float, nullable=True)
    sensor_count: Mapped[int] = mapped_column(Integer, default=0)
    detection_count: Mapped[int] = mapped_column(Integer, default=0)
    max_score: Mapped[float] = mapped_column(Float, default=0.0)
    rounds: Mapped[int] = mapped_column(
        Integer, default=0, server_default="0", doc="shots (sounds) grouped into the incident"
    )
    located_rounds: Mapped[int] = mapped_column(
        Integer, default=0, server_default="0", doc="of those, fixed by TDOA"
    )
    best_shot: Mapped[int | None] = mapped_column(
        Integer, nullable=True, doc="number of the shot whose fix or area the incident shows"
    )

    detections: Mapped[list[Detection]] = relationship(
        back_populates="incident", order_by="Detection.onset", passive_deletes=True
    )
    shots: Mapped[list[Shot]] = relationship(
        order_by="Shot.number",
        cascade="all, delete-orphan",
        passive_deletes=True,
        lazy="selectin",
    )

    transitions: Mapped[list[IncidentTransition]] = relationship(
        order_by="IncidentTransition.id", cascade="all, delete-orphan", passive_deletes=True
    )
    feedback: Mapped[list[Feedback]] = relationship(
        order_by="Feedback.id", cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def approximate(self) -> bool:
        """No point was fixed: the position is the centre of an approximate area."""
        return self.method != "tdoa"


class Shot(Base):
    """One sound of an incident (a round of a burst), located from its own arrivals."""

    __tablename__ = "shots"
    __table_args__ = (UniqueConstraint("incident_id", "number", name="uq_shots_incident_number"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    incident_id: Mapped[str] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer, doc="1 for the first round, in time order")
    time: Mapped[datetime] = mapped_column(UTCDateTime, doc="estimated emission time")
    first_onset: Mapped[datetime] = mapped_column(UTCDateTime)
    last_onset: Mapped[datetime] = mapped_column(UTCDateTime)
    label: Mapped[str] = mapped_column(String(32), doc="what its own detections say")
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    method: Mapped[str] = mapped_column(String(16))
    radius_m: Mapped[float] = mapped_column(Float)
    ellipse_major_m: Mapped[float | None] = mapped_column(Float, nullable=True)
    ellipse_minor_m: Mapped[float | None] = mapped_column(Float, nullable=True)
    ellipse_angle_deg: Mapped[float | None] = mapped_column(Float, nullable=True)
    residual_rms_m: Mapped[float | None] = mapped_column(Float, nullable=True)
    sensor_count: Mapped[int] = mapped_column(Integer)
    detection_count: Mapped[int] = mapped_column(Integer)
    onset_sensor_count: Mapped[int] = mapped_column(
        Integer,
        default=0,
        server_default="0",
        doc="sensors that took part only by a reported impulse onset (onsets on request)",
    )

    @property
    def approximate(self) -> bool:
        return self.method != "tdoa"


class Detection(Base):
    __tablename__ = "detections"
    __table_args__ = (
        Index("ix_detections_site_label_onset", "site", "label", "onset"),
        Index("ix_detections_onset", "onset"),
        Index("ix_detections_incident", "incident_id"),
        Index("ix_detections_sensor", "sensor_pk", "onset"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(32), unique=True)
    sensor_pk: Mapped[int] = mapped_column(ForeignKey("sensors.id", ondelete="CASCADE"))
    site: Mapped[str] = mapped_column(String(64))
    sensor_id: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(32))
    onset: Mapped[datetime] = mapped_column(UTCDateTime)
    offset: Mapped[datetime] = mapped_column(UTCDateTime)
    peak_score: Mapped[float] = mapped_column(Float)
    level_dbfs: Mapped[float] = mapped_column(Float)
    level_db_spl: Mapped[float | None] = mapped_column(Float, nullable=True)
    model_id: Mapped[str] = mapped_column(String(128))
    speech_present: Mapped[bool] = mapped_column(Boolean, default=False)
    sequence: Mapped[int] = mapped_column(BigInteger)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(String(16))
    incident_id: Mapped[str | None] = mapped_column(
        ForeignKey("incidents.id", ondelete="SET NULL"), nullable=True
    )
    fused_as: Mapped[str] = mapped_column(
        String(8),
        default="tdoa",
        doc="'tdoa': used to locate its shot; 'outlier': in the shot, rejected by the fit; "
        "'update': another detection of a sound already counted from that sensor",
    )
    shot_number: Mapped[int | None] = mapped_column(
        Integer, nullable=True, doc="the shot of its incident it belongs to"
    )

    incident: Mapped[Incident | None] = relationship(back_populates="detections")


class ImpulseOnsetRow(Base):
    """An impulse onset a sensor reported on the hub's request (``ImpulseOnsetMessage``):
    a time and a level, no label. Association may add it to a shot that too few sensors
    classified (docs/hub.md, "Onsets on request"); it never founds a shot or an incident."""

    __tablename__ = "impulse_onsets"
    __table_args__ = (Index("ix_impulse_onsets_site_onset", "site", "onset"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(32), unique=True)
    request_id: Mapped[str] = mapped_column(String(32))
    sensor_pk: Mapped[int] = mapped_column(ForeignKey("sensors.id", ondelete="CASCADE"))
    site: Mapped[str] = mapped_column(String(64))
    sensor_id: Mapped[str] = mapped_column(String(64))
    onset: Mapped[datetime] = mapped_column(UTCDateTime)
    level_dbfs: Mapped[float] = mapped_column(Float)
    prominence_db: Mapped[float] = mapped_column(Float)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    incident_id: Mapped[str | None] = mapped_column(
        ForeignKey("incidents.id", ondelete="SET NULL"), nullable=True, index=True
    )
    shot_number: Mapped[int | None] = mapped_column(
        Integer, nullable=True, doc="the shot whose fix it took part in (null: none)"
    )


class IncidentTransition(Base):
    __tablename__ = "incident_transitions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    incident_id: Mapped[str] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    from_state: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_state: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    comment: Mapped[str] = mapped_column(Text, default="")


class Feedback(Base):
    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    incident_id: Mapped[str] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    actor: Mapped[str] = mapped_column(String(64))
    verdict: Mapped[str] = mapped_column(String(16))
    cause: Mapped[str] = mapped_column(String(200), default="")
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class UserSession(Base):
    __tablename__ = "sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: every token expires; a revoked one is kept (revoked_at set) so the list shows it
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class UserChangeRequest(Base):
    """A change to a user that waits for a second admin (``ouie.hub.user_admin``): granting
    supervisor or admin, or resetting a privileged user's password. ``kind`` is ``create``
    (the user does not exist yet) or ``change``."""

    __tablename__ = "user_change_requests"
    __table_args__ = (Index("ix_user_change_requests_state", "state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    username: Mapped[str] = mapped_column(String(64))
    role: Mapped[str | None] = mapped_column(String(16), nullable=True)
    active: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    #: the new password, already hashed (argon2id); never the password itself
    password_hash: Mapped[str | None] = mapped_column(String(256), nullable=True)
    requested_by: Mapped[str] = mapped_column(String(64))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    decided_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AuditEntry(Base):
    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64), index=True)
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(String(128))
    detail: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """One row: the last sequence number and hash, locked while an entry is appended."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class AuditAnchor(Base):
    """A signed audit head (``ouie.hub.anchor``). The copy that counts is the one outsiders
    recorded from the public page; this table only lets every hub worker publish the latest."""

    __tablename__ = "audit_anchors"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    seq: Mapped[int] = mapped_column(BigInteger, index=True)
    hash: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    key_id: Mapped[str] = mapped_column(String(32))
    public_key: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(128))


class DeadLetter(Base):
    __tablename__ = "dead_letters"
    __table_args__ = (Index("ix_dead_letters_received", "received_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(String(16))
    topic: Mapped[str] = mapped_column(String(256))
    reason: Mapped[str] = mapped_column(String(32), index=True)
    detail: Mapped[str] = mapped_column(Text)
    payload: Mapped[str] = mapped_column(Text)


def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()
    # pysqlite's own deferred BEGIN lets two connections read the audit chain's head and
    # both append the same sequence number; we issue BEGIN IMMEDIATE ourselves instead.
    dbapi_connection.isolation_level = None


def _sqlite_begin_immediate(connection: Any) -> None:
    """SQLite has no SELECT … FOR UPDATE: take the write lock when the transaction starts,
    so read-modify-write sequences (audit chain head, incident fusion) are serialised."""
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and a busy timeout."""
    if url.startswith("sqlite"):
        connect_args = kwargs.pop("connect_args", {})
        connect_args.setdefault("check_same_thread", False)
        engine = create_engine(url, connect_args=connect_args, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin_immediate)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 8)
    return create_engine(url, **kwargs)


def session_factory(engine: Engine) -> sessionmaker[Any]:
    return sessionmaker(engine, expire_on_commit=False)


def migrate(engine: Engine, revision: str = "head") -> None:
    """Upgrade the database behind ``engine`` to ``revision`` with the packaged migrations."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "ouie.hub:migrations")
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def dumps(value: Any) -> str:
    """Canonical JSON (sorted keys, no spaces): what the audit chain hashes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
