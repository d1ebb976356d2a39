"""Fusion of impulsive detections (gunshot, explosion, glass breaking, vehicle crash) at one
site: re-associate the neighbourhood, then write incidents, shots and detections.

For each batch, the open impulsive incidents of the site whose time span comes within
``burst_window_s`` (plus the longest travel time) of the batch's onsets are loaded with all
their detections; ``ouie.hub.association.associate`` runs on those and the new detections
together; the result is mapped back onto incidents:

* a group keeps the existing incident that holds most of its detections (an incident an
  operator already works on first, then the earliest), so ids are stable;
* a group holding none of an existing incident's detections opens a new incident;
* an existing incident whose detections all went to another group was one burst seen in
  two pieces (out-of-order arrivals): it is closed, "merged into" the other, and audited.

Because association is a function of the set of detections, the incidents and shots do not
depend on the order detections arrived in. Only what changed is announced.

**Onsets on request.** A shot that 1-3 sensors classified is asked about at the site's
other sensors within ``max_sensor_separation_m``: each gets an ``OnsetAsk`` for the window
in which the sound must have reached it (every classifying sensor's onset ± the travel
time between them ± the timing tolerance), once per sensor and window; the hub sends it
after the commit unless the shot has meanwhile reached 4 sensors, and audits what it sent
(``onsets.requested``, ``Hub.send_onset_requests``). Their answers, stored in
``impulse_onsets``, come back through ingest, and the next fusion of the neighbourhood
gives them to association, which adds the ones that fit (``association.attach_onsets``).
"""

from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ouie.config.hub import FusionSettings
from ouie.core.messages import MAX_ONSET_WINDOW_S
from ouie.hub import audit
from ouie.hub.association import (
    IMPULSIVE_LABELS,
    ONSET_MIN_DETECTIONS,
    ONSET_MIN_SENSORS,
    Burst,
    FitCache,
    Heard,
    Params,
    Shot,
    associate,
    evidence_weight,
)
from ouie.hub.db import Detection, ImpulseOnsetRow, Incident, IncidentTransition
from ouie.hub.fusion_rows import (
    FusionOutput,
    OnsetAsk,
    PendingDetection,
    ShotFacts,
    epoch,
    new_incident,
    place,
    store_shots,
)
from ouie.hub.registry import SensorRegistry, SiteGeometry

OPEN_STATES = ("new", "acknowledged", "verifying", "confirmed")
#: Which existing incident a group keeps: one an operator already handles comes first.
STATE_PRIORITY = {"confirmed": 0, "verifying": 1, "acknowledged": 2, "new": 3}
#: How long the windows already asked of a sensor are remembered (no second ask for them).
ONSET_ASK_MEMORY_S = 120.0
ONSET_KEY_PREFIX = "onset:"


@dataclass
class _StoredOnset:
    """A reported onset already in the database, as fusion needs it."""

    id: int
    incident_id: str | None
    shot_number: int | None


@dataclass
class _Stored:
    """A detection already in the database, as fusion needs it."""

    id: int
    incident_id: str
    shot_number: int | None
    fused_as: str
    score: float


class BurstFuser:
    def __init__(self, settings: FusionSettings, registry: SensorRegistry) -> None:
        self.settings = settings
        self.registry = registry
        # the neighbourhood is re-associated every batch; its unchanged shots are not re-fit
        self.fits = FitCache()
        # the onset windows already asked of each (site, sensor): (start, end) epoch s
        self._asked: dict[tuple[str, int], deque[tuple[float, float]]] = {}

    def params(self, c: float, geometry: SiteGeometry) -> Params:
        s = self.settings
        return Params(
            c=c,
            source_up=geometry.source_up,
            tolerance_s=s.timing_tolerance_s,
            onset_sigma_s=s.onset_sigma_s,
            max_separation_m=s.max_sensor_separation_m,
            hearing_m=s.fallback_radius_m,
            max_solution_distance_m=s.max_solution_distance_m,
            burst_window_s=s.burst_window_s,
            burst_radius_m=s.burst_radius_m,
            area_ranges=tuple(sorted((str(k), v) for k, v in s.hearing_range_m.items())),
        )

    def _neighbourhood(
        self, session: Session, site: str, start: datetime, end: datetime
    ) -> list[Incident]:
        return list(
            session.execute(
                select(Incident)
                .where(
                    Incident.site == site,
                    Incident.label.in_(sorted(IMPULSIVE_LABELS)),
                    Incident.state.in_(OPEN_STATES),
                    Incident.last_onset >= start,
                    Incident.first_onset <= end,
                )
                .order_by(Incident.first_onset, Incident.id)
            )
            .scalars()
            .all()
        )

    def fuse_site(
        self,
        session: Session,
        site: str,
        detections: list[PendingDetection],
        c: float,
        now: datetime,
        out: FusionOutput,
        reported: list[datetime] | None = None,
    ) -> None:
        """Fuse ``detections`` (new) with the site's neighbourhood; ``reported`` are the
        times of onsets just stored from sensors' answers, whose shots are fused again."""
        geometry = self.registry.site(site)
        if geometry is None:  # no registered sensor: cannot happen for validated events
            return
        params = self.params(c, geometry)
        horizon = timedelta(
            seconds=self.settings.burst_window_s
            + params.max_separation_m / c
            + 2.0 * params.tolerance_s
        )
        onsets = [d.onset for d in detections] + list(reported or [])
        if not onsets:
            return
        start, end = min(onsets) - horizon, max(onsets) + horizon
        incidents = self._neighbourhood(session, site, start, end)
        if not incidents and not detections:
            return  # onsets alone never found an incident
        by_id = {incident.id: incident for incident in incidents}
        heard: list[Heard] = []
        stored: dict[str, _Stored] = {}
        if by_id:
            rows = session.execute(
                select(
                    Detection.id,
                    Detection.message_id,
                    Detection.incident_id,
                    Detection.sensor_pk,
                    Detection.onset,
                    Detection.offset,
                    Detection.label,
                    Detection.peak_score,
                    Detection.level_dbfs,
                    Detection.level_db_spl,
                    Detection.shot_number,
                    Detection.fused_as,
                ).where(Detection.incident_id.in_(list(by_id)))
            ).all()
            for row in rows:
                sensor = self.registry.by_pk(row.sensor_pk)
                if sensor is None or row.incident_id is None:
                    continue  # a sensor deleted since: its detections stay where they are
                level = row.level_db_spl if row.level_db_spl is not None else row.level_dbfs
                heard.append(
                    Heard(
                        key=row.message_id,
                        sensor=row.sensor_pk,
                        onset=row.onset.timestamp(),
                        label=row.label,
                        weight=evidence_weight(row.peak_score, row.level_dbfs),
                        strength=level,
                        position=sensor.enu,
                        end=row.offset.timestamp(),
                    )
                )
                stored[row.message_id] = _Stored(
                    row.id, row.incident_id, row.shot_number, row.fused_as, row.peak_score
                )
        pending = {d.row["message_id"]: d for d in detections}
        for detection in detections:
            values = detection.row
            heard.append(
                Heard(
                    key=str(values["message_id"]),
                    sensor=detection.sensor.pk,
                    onset=detection.onset.timestamp(),
                    label=str(values["label"]),
                    weight=evidence_weight(
                        float(values["peak_score"]), float(values["level_dbfs"])
                    ),
                    strength=detection.strength,
                    position=detection.sensor.enu,
                    end=values["offset"].timestamp(),
                )
            )
        # every reported onset the loaded incidents' shots may hold, not only the batch's
        reach = timedelta(seconds=params.max_separation_m / c + 2.0 * params.tolerance_s)
        for loaded in incidents:
            start = min(start, loaded.first_onset - reach)
            end = max(end, loaded.last_onset + reach)
        reports, stored_onsets = self._reported(session, site, start, end)
        bursts = associate(heard, params, self.fits, reports)
        owners = self._owners(bursts, by_id, stored)
        before: dict[str, set[str]] = {}
        for key, old in stored.items():
            before.setdefault(old.incident_id, set()).add(key)
        for key, old_onset in stored_onsets.items():
            if old_onset.incident_id is not None:
                before.setdefault(old_onset.incident_id, set()).add(key)
        scores = {key: old.score for key, old in stored.items()}
        scores.update({key: float(d.row["peak_score"]) for key, d in pending.items()})
        final: list[Incident] = []
        for index, burst in enumerate(bursts):
            incident = owners.get(index)
            created = incident is None
            if incident is None:
                first = burst.shots[0].members[0]
                incident = new_incident(
                    site, burst.label, epoch(first.onset), now, self.settings.fallback_radius_m
                )
            final.append(incident)
            previous_label = incident.label
            self._write(incident, burst, geometry, scores, now)
            self._assign(incident.id, burst, pending, stored, out)
            self._assign_onsets(incident.id, burst, stored_onsets, out)
            if created:
                out.created_incident(incident, now)
                out.change(incident, "created")
                continue
            relabelled = incident.label != previous_label
            if relabelled:
                out.audit_events.append(
                    audit.AuditEvent(
                        actor="system",
                        action="incident.relabelled",
                        object_type="incident",
                        object_id=incident.id,
                        detail={"from": previous_label, "to": incident.label},
                    )
                )
            if {h.key for h in burst.members} != before.get(incident.id, set()) or relabelled:
                out.change(incident, "updated")
        for incident, burst in zip(final, bursts, strict=True):
            for shot in burst.shots:
                self._ask_onsets(site, incident.id, shot, params, now, out)
        placed = {h.key for burst in bursts for h in burst.members if h.onset_only}
        for key, old_onset in stored_onsets.items():
            if key not in placed and old_onset.incident_id is not None:
                out.onset_updates.append(
                    {"id": old_onset.id, "incident_id": None, "shot_number": None}
                )
        kept = {incident.id for incident in owners.values()}
        for incident in by_id.values():
            if incident.id not in kept:
                into = self._absorber(incident.id, bursts, final, stored)
                self._merged(incident, into, now, out)

    @staticmethod
    def _assign(
        incident_id: str,
        burst: Burst,
        pending: dict[str, PendingDetection],
        stored: dict[str, _Stored],
        out: FusionOutput,
    ) -> None:
        """Point the burst's detections at their incident and shot: new ones in their pending
        rows, stored ones by an update (run once the new incidents exist)."""
        for number, shot in enumerate(burst.shots, start=1):
            for h in shot.classified:
                if h.key in shot.used:
                    fused_as = "tdoa"
                elif shot.by_sensor[h.sensor] is h:
                    fused_as = "outlier"  # in the shot, rejected by its fit
                else:
                    fused_as = "update"  # the same sound again from that sensor
                detection = pending.get(h.key)
                if detection is not None:
                    detection.incident_id = incident_id
                    detection.shot_number = number
                    detection.fused_as = fused_as
                    continue
                old = stored[h.key]
                if (old.incident_id, old.shot_number, old.fused_as) != (
                    incident_id,
                    number,
                    fused_as,
                ):
                    out.detection_updates.append(
                        {
                            "id": old.id,
                            "incident_id": incident_id,
                            "shot_number": number,
                            "fused_as": fused_as,
                        }
                    )

    def _reported(
        self, session: Session, site: str, start: datetime, end: datetime
    ) -> tuple[list[Heard], dict[str, _StoredOnset]]:
        """The onsets sensors reported at ``site`` between ``start`` and ``end``."""
        rows = session.execute(
            select(
                ImpulseOnsetRow.id,
                ImpulseOnsetRow.message_id,
                ImpulseOnsetRow.sensor_pk,
                ImpulseOnsetRow.onset,
                ImpulseOnsetRow.prominence_db,
                ImpulseOnsetRow.incident_id,
                ImpulseOnsetRow.shot_number,
            ).where(
                ImpulseOnsetRow.site == site,
                ImpulseOnsetRow.onset >= start,
                ImpulseOnsetRow.onset <= end,
            )
        ).all()
        heard: list[Heard] = []
        stored: dict[str, _StoredOnset] = {}
        seen: set[tuple[int, datetime]] = set()
        for row in sorted(rows, key=lambda r: r.id):
            sensor = self.registry.by_pk(row.sensor_pk)
            if sensor is None:
                continue
            if (row.sensor_pk, row.onset) in seen:
                continue  # the same onset, answering a second request: one arrival
            seen.add((row.sensor_pk, row.onset))
            key = ONSET_KEY_PREFIX + row.message_id
            heard.append(
                Heard(
                    key=key,
                    sensor=row.sensor_pk,
                    onset=row.onset.timestamp(),
                    label="",
                    weight=0.0,
                    strength=row.prominence_db,
                    position=sensor.enu,
                    onset_only=True,
                )
            )
            stored[key] = _StoredOnset(row.id, row.incident_id, row.shot_number)
        return heard, stored

    @staticmethod
    def _assign_onsets(
        incident_id: str,
        burst: Burst,
        stored: dict[str, _StoredOnset],
        out: FusionOutput,
    ) -> None:
        """Point the reported onsets that joined a shot of ``burst`` at it."""
        for number, shot in enumerate(burst.shots, start=1):
            for h in shot.members:
                old = stored.get(h.key) if h.onset_only else None
                if old is not None and (old.incident_id, old.shot_number) != (incident_id, number):
                    out.onset_updates.append(
                        {"id": old.id, "incident_id": incident_id, "shot_number": number}
                    )

    def _ask_onsets(
        self,
        site: str,
        incident_id: str,
        shot: Shot,
        p: Params,
        now: datetime,
        out: FusionOutput,
    ) -> None:
        """Ask the site's other sensors for their onsets of a shot that 1-3 sensors
        classified (module docstring), once per sensor and window."""
        classified = [h for h in shot.by_sensor.values() if not h.onset_only]
        if len(shot.by_sensor) >= ONSET_MIN_SENSORS or len(classified) < ONSET_MIN_DETECTIONS:
            return
        for sensor in self.registry.all():
            if sensor.site != site or sensor.pk in shot.by_sensor:
                continue
            low, high = -math.inf, math.inf
            for h in classified:
                d = math.dist(sensor.enu, h.position)
                if d > p.max_separation_m:
                    high = -math.inf
                    break
                low = max(low, h.onset - d / p.c - p.tolerance_s)
                high = min(high, h.onset + d / p.c + p.tolerance_s)
            if high <= low:
                continue
            if high - low > MAX_ONSET_WINDOW_S:  # cannot happen below ~680 m between sensors
                middle = (low + high) / 2.0
                low, high = middle - MAX_ONSET_WINDOW_S / 2.0, middle + MAX_ONSET_WINDOW_S / 2.0
            if self._already_asked(site, sensor.pk, low, high):
                continue
            out.onset_asks.append(
                OnsetAsk(site, sensor.sensor_id, low, high, incident_id, shot.start)
            )

    def _already_asked(self, site: str, sensor_pk: int, low: float, high: float) -> bool:
        """Whether a window covering ``[low, high]`` was asked of this sensor already;
        remembers this one otherwise."""
        windows = self._asked.setdefault((site, sensor_pk), deque())
        while windows and windows[0][1] < high - ONSET_ASK_MEMORY_S:
            windows.popleft()
        if any(a <= low + 1e-3 and b >= high - 1e-3 for a, b in windows):
            return True
        windows.append((low, high))
        return False

    @staticmethod
    def _absorber(
        incident_id: str, bursts: list[Burst], final: list[Incident], stored: dict[str, _Stored]
    ) -> str | None:
        """The incident that received most of ``incident_id``'s detections."""
        counts = Counter(
            final[index].id
            for index, burst in enumerate(bursts)
            for h in burst.members
            if h.key in stored and stored[h.key].incident_id == incident_id
        )
        return min(counts, key=lambda i: (-counts[i], i)) if counts else None

    @staticmethod
    def _owners(
        bursts: list[Burst], by_id: dict[str, Incident], stored: dict[str, _Stored]
    ) -> dict[int, Incident]:
        """Which existing incident each group keeps (see the module docstring)."""
        pairs: list[tuple[int, int, datetime, str, int]] = []
        for index, burst in enumerate(bursts):
            counts = Counter(stored[h.key].incident_id for h in burst.members if h.key in stored)
            for incident_id, n in counts.items():
                incident = by_id[incident_id]
                priority = STATE_PRIORITY.get(incident.state, 9)
                pairs.append((-n, priority, incident.first_onset, incident_id, index))
        owners: dict[int, Incident] = {}
        taken: set[str] = set()
        for _, _, _, incident_id, index in sorted(pairs):
            if index in owners or incident_id in taken:
                continue
            owners[index] = by_id[incident_id]
            taken.add(incident_id)
        return owners

    def _write(
        self,
        incident: Incident,
        burst: Burst,
        geometry: SiteGeometry,
        scores: dict[str, float],
        now: datetime,
    ) -> None:
        members = burst.members
        incident.label = burst.label
        incident.first_onset = epoch(min(h.onset for h in members))
        incident.last_onset = epoch(max(h.onset for h in members))
        best = burst.shots[burst.best]
        assert best.fix is not None
        place(incident, best.fix, geometry)
        incident.rounds = len(burst.shots)
        incident.located_rounds = sum(shot.located for shot in burst.shots)
        incident.best_shot = burst.best + 1
        incident.sensor_count = len({h.sensor for h in members})
        incident.detection_count = len(burst.detections)
        incident.max_score = max(scores.get(h.key, 0.0) for h in members)
        incident.updated_at = now
        facts = []
        for number, shot in enumerate(burst.shots, start=1):
            assert shot.fix is not None
            facts.append(
                ShotFacts(
                    number=number,
                    time=shot.t0 if math.isfinite(shot.t0) else shot.start,
                    first_onset=shot.start,
                    last_onset=shot.end,
                    label=shot.label(),
                    fix=shot.fix,
                    sensor_count=len(shot.by_sensor),
                    detection_count=len(shot.classified),
                    onset_sensor_count=sum(h.onset_only for h in shot.by_sensor.values()),
                )
            )
        store_shots(incident, facts, geometry)

    @staticmethod
    def _merged(incident: Incident, into: str | None, now: datetime, out: FusionOutput) -> None:
        """``incident`` lost all its detections to another group: close it as merged."""
        comment = f"merged into {into}" if into else "merged"
        previous = incident.state
        incident.state = "closed"
        incident.updated_at = now
        incident.rounds = incident.located_rounds = 0
        incident.sensor_count = incident.detection_count = 0
        incident.best_shot = None
        incident.shots = []
        out.transitions.append(
            IncidentTransition(
                incident_id=incident.id,
                from_state=previous,
                to_state="closed",
                actor="system",
                at=now,
                comment=comment,
            )
        )
        out.audit_events.append(
            audit.AuditEvent(
                actor="system",
                action="incident.merged",
                object_type="incident",
                object_id=incident.id,
                detail={"into": into},
            )
        )
        out.change(incident, "closed")
