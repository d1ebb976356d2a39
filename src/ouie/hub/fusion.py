"""Fusion: detections from many sensors → incidents, each sound located by TDOA.

Two kinds of sound, two kinds of association:

* **Impulsive** classes (gunshot, explosion, glass breaking, vehicle crash) are associated
  by geometry, whatever label each sensor gave: detections whose onsets fit one source
  position and time are one shot, shots close in time and place are the rounds of one
  incident, and the incident's label comes from the evidence of all of them
  (``hub/association.py``; the database side, ``hub/bursts.py``). Every shot is located
  from its own arrivals.
* **Sustained** classes (siren, car alarm, scream, spray can) keep a simpler association
  per (site, label): a new detection joins an open incident when its onset is consistent
  with sound travel — for every sensor already locating the incident,
  ``|t - t_j| ≤ distance(s, s_j) / c + tolerance`` ("tdoa", it takes part in localisation)
  — or when it is a later repeat (a siren still sounding) within ``update_window_s`` of the
  incident's last onset, from a sensor already in it or one within hearing distance of its
  position ("update": times and counts, not position). The incident's one shot is the
  sound its "tdoa" members locate.

With fewer than three sensors, or a failed fit, an incident or shot is an approximate area
(``method="area"``), never a point made up from sensor positions. All of this runs inside
the ingest transaction, so an incident, its shots and its detections are committed
together; on PostgreSQL a transaction-scoped advisory lock per (site, impulsive) or
(site, label) serialises fusion between hub workers sharing a subscription.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from ouie.config.hub import FusionSettings
from ouie.core.geo import speed_of_sound
from ouie.hub import audit
from ouie.hub.association import is_impulsive
from ouie.hub.bursts import BurstFuser
from ouie.hub.db import Detection, ImpulseOnsetRow, Incident
from ouie.hub.fixes import Fix
from ouie.hub.fusion_rows import (
    FusionOutput,
    IncidentChange,
    OnsetAsk,
    PendingDetection,
    ShotFacts,
    new_incident,
    place,
    store_shots,
)
from ouie.hub.locate import Observation, locate_many
from ouie.hub.registry import SensorRegistry

__all__ = ["Fuser", "FusionStats", "IncidentChange", "OnsetAsk", "PendingDetection"]

#: Incident states that still accept detections.
OPEN_STATES = ("new", "acknowledged", "verifying", "confirmed")
#: The advisory-lock key of impulsive fusion at a site (all impulsive labels together).
IMPULSIVE_KEY = "impulsive"


@dataclass
class _Member:
    sensor_pk: int
    onset: datetime
    fused_as: str
    strength: float
    score: float


@dataclass
class _Working:
    incident: Incident
    members: list[_Member]
    created: bool = False
    relocate: bool = False
    touched: bool = False
    position: tuple[float, float] | None = None  # ENU of the current fix
    # caches for matching: sensors heard, earliest "tdoa" onset per sensor (epoch s), span
    sensors: set[int] = field(default_factory=set)
    first: dict[int, float] = field(default_factory=dict)
    first_ts: float = math.inf
    last_ts: float = -math.inf

    def add(self, member: _Member) -> None:
        self.members.append(member)
        self.sensors.add(member.sensor_pk)
        ts = member.onset.timestamp()
        self.first_ts = min(self.first_ts, ts)
        self.last_ts = max(self.last_ts, ts)
        if member.fused_as == "tdoa":
            current = self.first.get(member.sensor_pk)
            if current is None or ts < current:
                self.first[member.sensor_pk] = ts

    def tdoa_onsets(self) -> dict[int, datetime]:
        first: dict[int, datetime] = {}
        for member in self.members:
            if member.fused_as == "tdoa" and (
                member.sensor_pk not in first or member.onset < first[member.sensor_pk]
            ):
                first[member.sensor_pk] = member.onset
        return first


@dataclass
class FusionStats:
    calls: int = 0
    seconds: list[float] = field(default_factory=list)


def _lock_key(site: str, label: str) -> int:
    digest = hashlib.blake2b(f"{site}|{label}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class Fuser:
    def __init__(self, settings: FusionSettings, registry: SensorRegistry) -> None:
        self.settings = settings
        self.registry = registry
        self.temperature_c = settings.temperature_c
        self.c = speed_of_sound(settings.temperature_c)
        self.bursts = BurstFuser(settings, registry)
        self._distances: dict[tuple[int, int], float] = {}
        self._spans: dict[str, float] = {}
        self._cache_version = -1

    def set_temperature(self, temperature_c: float) -> None:
        """Use the speed of sound at ``temperature_c`` from now on (the twin sets each
        scenario's air temperature; a deployment could follow a weather feed)."""
        self.temperature_c = temperature_c
        self.c = speed_of_sound(temperature_c)
        self._spans.clear()

    # -- helpers ---------------------------------------------------------------------
    def _distance(self, a: int, b: int) -> float:
        key = (a, b) if a < b else (b, a)
        cached = self._distances.get(key)
        if cached is None:
            sa, sb = self.registry.by_pk(a), self.registry.by_pk(b)
            cached = math.inf if sa is None or sb is None else math.dist(sa.enu, sb.enu)
            self._distances[key] = cached
        return cached

    def _site_span_s(self, site: str) -> float:
        """Longest travel time between two sensors of ``site`` (cached per registry load)."""
        if self._cache_version != self.registry.version:
            self._distances.clear()
            self._spans.clear()
            self._cache_version = self.registry.version
        span = self._spans.get(site)
        if span is None:
            sensors = [s for s in self.registry.all() if s.site == site]
            widest = 0.0
            for i, a in enumerate(sensors):
                for b in sensors[i + 1 :]:
                    widest = max(widest, math.dist(a.enu, b.enu))
            span = self._spans[site] = widest / self.c
        return span

    def _load_candidates(
        self, session: Session, site: str, label: str, start: datetime, end: datetime
    ) -> list[_Working]:
        incidents = (
            session.execute(
                select(Incident).where(
                    Incident.site == site,
                    Incident.label == label,
                    Incident.state.in_(OPEN_STATES),
                    Incident.last_onset >= start,
                    Incident.first_onset <= end,
                )
            )
            .scalars()
            .all()
        )
        if not incidents:
            return []
        by_id = {incident.id: _Working(incident, []) for incident in incidents}
        rows = session.execute(
            select(
                Detection.incident_id,
                Detection.sensor_pk,
                Detection.onset,
                Detection.fused_as,
                Detection.level_dbfs,
                Detection.level_db_spl,
                Detection.peak_score,
            ).where(Detection.incident_id.in_(list(by_id)))
        ).all()
        for incident_id, sensor_pk, onset, fused_as, dbfs, spl, score in rows:
            if incident_id is None:
                continue
            strength = (spl if spl is not None else dbfs) + 1e-3 * score
            by_id[incident_id].add(_Member(sensor_pk, onset, fused_as, strength, score))
        geometry = self.registry.site(site)
        for working in by_id.values():
            if geometry is not None:
                east, north, _ = geometry.frame.to_enu(
                    working.incident.lat, working.incident.lon, geometry.frame.h0
                )
                working.position = (east, north)
        return list(by_id.values())

    def _choose(
        self, detection: PendingDetection, candidates: list[_Working], span_s: float
    ) -> tuple[_Working, str] | None:
        s = self.settings
        # a sustained sound's onset is where its first window over the threshold starts
        tol = s.timing_tolerance_s + s.sustained_onset_tolerance_s
        window = s.update_window_s
        pk = detection.sensor.pk
        onset = detection.onset.timestamp()
        reach = 2.0 * s.fallback_radius_m
        separation = s.max_sensor_separation_m
        best: tuple[int, float, _Working, str] | None = None
        for working in candidates:
            if (
                onset < working.first_ts - span_s - tol
                or onset > working.last_ts + max(window, span_s) + tol
            ):
                continue
            heard_here = pk in working.sensors
            kind: str | None = None
            if (
                not heard_here
                and working.first
                and all(
                    (d := self._distance(pk, j)) <= separation
                    and abs(onset - t_j) <= d / self.c + tol
                    for j, t_j in working.first.items()
                )
            ):
                kind = "tdoa"
            if (kind is None and working.first_ts - tol <= onset <= working.last_ts + window) and (
                heard_here
                or (
                    working.position is not None
                    and math.dist(working.position, detection.sensor.enu[:2]) <= reach
                )
            ):
                kind = "update"
            if kind is None:
                continue
            rank = (0 if kind == "tdoa" else 1, abs(onset - working.last_ts))
            if best is None or rank < (best[0], best[1]):
                best = (rank[0], rank[1], working, kind)
        return None if best is None else (best[2], best[3])

    def _new_incident(self, detection: PendingDetection, now: datetime) -> _Working:
        sensor = detection.sensor
        incident = new_incident(
            sensor.site,
            detection.row["label"],
            detection.onset,
            now,
            self.settings.fallback_radius_m,
        )
        # placed by ``_relocate_all`` (its founding detection locates it); until then the
        # sensor is only where matching starts, never what is reported
        incident.lat, incident.lon = sensor.lat, sensor.lon
        return _Working(incident, [], created=True, position=sensor.enu[:2])

    def _observations(self, working: _Working) -> list[Observation]:
        first = working.tdoa_onsets()
        if not first:
            return []
        strengths: dict[int, float] = {}
        for member in working.members:
            strengths[member.sensor_pk] = max(
                strengths.get(member.sensor_pk, -1e9), member.strength
            )
        reference = min(first.values())
        observations: list[Observation] = []
        for pk, onset in first.items():
            sensor = self.registry.by_pk(pk)
            if sensor is None:
                continue
            observations.append(
                Observation(
                    east=sensor.enu[0],
                    north=sensor.enu[1],
                    up=sensor.enu[2],
                    onset_s=(onset - reference).total_seconds(),
                    strength=strengths.get(pk, -1e9),
                )
            )
        return observations

    def _relocate_all(self, workings: list[_Working]) -> None:
        """Locate every incident whose TDOA set changed, batched per site; the sound its
        "tdoa" members heard is the incident's one shot."""
        by_site: dict[str, list[tuple[_Working, list[Observation]]]] = {}
        for working in workings:
            observations = self._observations(working)
            if observations and self.registry.site(working.incident.site) is not None:
                by_site.setdefault(working.incident.site, []).append((working, observations))
        s = self.settings
        for site, items in by_site.items():
            geometry = self.registry.site(site)
            assert geometry is not None
            fixes = locate_many(
                [observations for _, observations in items],
                self.c,
                onset_sigma_s=s.onset_sigma_s,
                fallback_radius_m=s.fallback_radius_m,
                source_up=geometry.source_up,
                max_distance_m=s.max_solution_distance_m,
                timing_tolerance_s=s.timing_tolerance_s,
                area_hearing_m=[s.hearing_for([w.incident.label]) for w, _ in items],
                # a sustained sound's onset is where its first window over the threshold
                # shows a rise, or that window's start (0.25 s hop: 85 m of travel)
                vague_onsets=True,
            )
            for (working, _), fix in zip(items, fixes, strict=True):
                incident = working.incident
                place(incident, fix, geometry)
                working.position = (fix.east, fix.north)
                store_shots(incident, [self._sole_shot(working, fix)], geometry)
                incident.rounds = 1
                incident.located_rounds = int(fix.method == "tdoa")
                incident.best_shot = 1

    def _sole_shot(self, working: _Working, fix: Fix) -> ShotFacts:
        onsets = [m.onset.timestamp() for m in working.members if m.fused_as == "tdoa"]
        reference = min(working.tdoa_onsets().values()).timestamp()
        return ShotFacts(
            number=1,
            time=reference + fix.t0_s if fix.t0_s is not None else min(onsets),
            first_onset=min(onsets),
            last_onset=max(onsets),
            label=working.incident.label,
            fix=fix,
            sensor_count=len(working.first),
            detection_count=len(onsets),
        )

    # -- the entry point -------------------------------------------------------------
    def fuse(
        self,
        session: Session,
        detections: Sequence[PendingDetection],
        now: datetime,
        reported: Sequence[tuple[str, datetime]] = (),
        asks: list[OnsetAsk] | None = None,
    ) -> list[IncidentChange]:
        """Assign each detection to an incident (new or existing) and a shot, and locate;
        adds the incidents, shots, transitions and audit entries to ``session`` (caller
        commits). ``reported``: (site, time) of impulse onsets just stored from sensors'
        answers, whose neighbourhoods are fused again; the onset requests fusion wants sent
        after the commit are appended to ``asks``."""
        impulsive: dict[str, list[PendingDetection]] = {}
        onset_times: dict[str, list[datetime]] = {}
        for site, when in reported:
            onset_times.setdefault(site, []).append(when)
        sustained: dict[tuple[str, str], list[PendingDetection]] = {}
        for detection in detections:
            site, label = detection.sensor.site, detection.row["label"]
            if is_impulsive(label):
                impulsive.setdefault(site, []).append(detection)
            else:
                sustained.setdefault((site, label), []).append(detection)
        out = FusionOutput()
        postgres = session.get_bind().dialect.name == "postgresql"
        with session.no_autoflush:
            for site in sorted(set(impulsive) | set(onset_times)):
                if postgres:
                    self._lock(session, site, IMPULSIVE_KEY)
                self.bursts.fuse_site(
                    session, site, impulsive.get(site, []), self.c, now, out, onset_times.get(site)
                )
            self._fuse_groups(session, sustained, now, postgres, out)
        # new incidents first (detections and transitions reference them)
        session.add_all(out.created)
        session.flush()
        session.add_all(out.transitions)
        if out.detection_updates:
            session.execute(update(Detection), out.detection_updates)
        if out.onset_updates:
            session.execute(update(ImpulseOnsetRow), out.onset_updates)
        if asks is not None:
            asks.extend(out.onset_asks)
        audit.record(session, *out.audit_events, at=now)
        return out.changes

    @staticmethod
    def _lock(session: Session, site: str, key: str) -> None:
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _lock_key(site, key)})

    def _fuse_groups(
        self,
        session: Session,
        groups: dict[tuple[str, str], list[PendingDetection]],
        now: datetime,
        postgres: bool,
        out: FusionOutput,
    ) -> None:
        touched: list[tuple[str, str, _Working]] = []
        for (site, label), group in sorted(groups.items()):
            if postgres:
                self._lock(session, site, label)
            group.sort(key=lambda d: d.onset)
            span_s = min(self._site_span_s(site), self.settings.max_sensor_separation_m / self.c)
            horizon = timedelta(
                seconds=max(self.settings.update_window_s, span_s)
                + self.settings.timing_tolerance_s
            )
            candidates = self._load_candidates(
                session, site, label, group[0].onset - horizon, group[-1].onset + horizon
            )
            for detection in group:
                chosen = self._choose(detection, candidates, span_s)
                if chosen is None:
                    working = self._new_incident(detection, now)
                    candidates.append(working)
                    kind = "tdoa"
                else:
                    working, kind = chosen
                detection.incident_id = working.incident.id
                detection.fused_as = kind
                detection.shot_number = 1 if kind == "tdoa" else None
                working.add(
                    _Member(
                        detection.sensor.pk,
                        detection.onset,
                        kind,
                        detection.strength,
                        float(detection.row["peak_score"]),
                    )
                )
                working.touched = True
                if kind == "tdoa":
                    working.relocate = True
                incident = working.incident
                incident.first_onset = min(incident.first_onset, detection.onset)
                incident.last_onset = max(incident.last_onset, detection.onset)
            touched += [(site, label, w) for w in candidates if w.touched]
        self._relocate_all([w for _, _, w in touched if w.relocate])
        for _site, _label, working in touched:
            incident = working.incident
            incident.sensor_count = len(working.sensors)
            incident.detection_count = len(working.members)
            incident.max_score = max(m.score for m in working.members)
            incident.updated_at = now
            if working.created:
                out.created_incident(incident, now)
            out.change(incident, "created" if working.created else "updated")
