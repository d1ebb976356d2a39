"""The scorecard: what the hub reported against what really happened, shot by shot.

Matching is done at the level the hub works at, so nothing is double counted:

1. every **detection** (one sensor, an onset) is matched to the ground-truth event whose
   true arrival at that sensor (corrected by the sensor's simulated clock offset) is
   closest, if its onset lies within ``[arrival − early_s, arrival + event duration +
   late_s]`` — whatever label the sensor gave it, as the hub associates by geometry;
2. every **shot** the hub located is matched to the event most of its own detections
   matched (its own arrival windows, not its incident's founder): a shot with a TDOA fix
   gives a localisation error (for each event, the located shot with most sensors; any
   other shot of the same event is a ``split``, a round reported twice),
   a shot given as an approximate area says whether the area holds the source
   (``covered``); a shot none of whose detections matched a target event is ``spurious``;
3. an **incident** is ``true`` when its shots hold a target event of its own label (a second
   incident holding only events already reported is a ``duplicate``), ``wrong_label`` when
   they hold real target events but none of its label (counted in ``mislabelled``, not in
   false alarms), and a ``false_alarm`` when they hold no target event at all (an empty
   street, or a non-target sound such as a door); rounds reported and found are counted per
   incident, latency from the incident's earliest event;
4. a target **event** is detected when an incident of its label holds a detection matched to
   it, else missed.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from ouie.core.geometry import distance_m
from ouie.core.labels import EVENT_LABELS, is_target
from ouie.sim.scenario import TruthEvent
from ouie.sim.sources import combine

EARLY_S = 0.25
LATE_S = 0.75


@dataclass(frozen=True)
class ObservedDetection:
    sensor_id: str
    label: str
    onset: datetime
    message_id: str
    fused_as: str = "tdoa"
    shot_number: int | None = None


@dataclass(frozen=True)
class ObservedShot:
    """One shot of an incident as read back through the hub's API."""

    number: int
    lat: float
    lon: float
    method: str
    radius_m: float
    sensor_count: int

    @property
    def located(self) -> bool:
        return self.method == "tdoa"


@dataclass
class ObservedIncident:
    """An incident as read back through the hub's API."""

    id: str
    label: str
    lat: float
    lon: float
    method: str
    radius_m: float
    first_onset: datetime
    detections: list[ObservedDetection] = field(default_factory=list)
    visible_s: float | None = None  # scenario time it first became visible via the hub
    shots: list[ObservedShot] = field(default_factory=list)

    def shot_list(self) -> list[ObservedShot]:
        """Its shots; a hub that reports none is taken to report one, the incident itself."""
        if self.shots:
            return self.shots
        sensors = len({d.sensor_id for d in self.detections})
        return [ObservedShot(1, self.lat, self.lon, self.method, self.radius_m, sensors)]

    def members(self, shot: ObservedShot) -> list[ObservedDetection]:
        if not self.shots:
            return self.detections
        return [d for d in self.detections if d.shot_number == shot.number]


def _percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if values else None


def match_detection(
    detection: ObservedDetection,
    truth: list[TruthEvent],
    origin: datetime,
    clock_offsets_s: dict[str, float],
    any_label: bool = True,
) -> TruthEvent | None:
    """The truth event ``detection`` heard, if any (of its own label only unless
    ``any_label``)."""
    onset = (detection.onset - origin).total_seconds() - clock_offsets_s.get(
        detection.sensor_id, 0.0
    )
    best: tuple[float, TruthEvent] | None = None
    for event in truth:
        if event.label != detection.label and not any_label:
            continue
        arrival = event.arrivals.get(detection.sensor_id)
        if arrival is None:
            continue
        if arrival - EARLY_S <= onset <= arrival + event.duration_s + LATE_S:
            gap = abs(onset - arrival)
            if best is None or gap < best[0]:
                best = (gap, event)
    return best[1] if best else None


def _majority(events: list[TruthEvent]) -> TruthEvent | None:
    if not events:
        return None
    counts = Counter(e.index for e in events)
    index = min(counts, key=lambda i: (-counts[i], i))
    return next(e for e in events if e.index == index)


def _group(event: TruthEvent) -> int:
    return event.group if event.group >= 0 else -1 - event.index


@dataclass
class _Tally:
    """Running totals while the incidents are scored."""

    matched: dict[str, TruthEvent | None] = field(default_factory=dict)
    detected: set[int] = field(default_factory=set)
    founded: set[int] = field(default_factory=set)
    located: dict[int, float] = field(default_factory=dict)  # event → error of its fix
    #: event → (incident id, shot number) of the located shot that counts for it: the one
    #: with most sensors (others of the same event are ``split``)
    best: dict[int, tuple[str, int]] = field(default_factory=dict)
    shot_rounds: set[int] = field(default_factory=set)  # target events some shot matched
    errors: list[float] = field(default_factory=list)
    areas: int = 0
    areas_covered: int = 0
    latency: list[float] = field(default_factory=list)
    false_alarms: int = 0
    mislabelled: int = 0
    duplicates: int = 0
    reported_rounds: int = 0


def _score_shots(
    incident: ObservedIncident, tally: _Tally
) -> tuple[list[dict[str, Any]], list[TruthEvent]]:
    rows: list[dict[str, Any]] = []
    events: list[TruthEvent] = []
    for shot in incident.shot_list():
        event = _shot_event(incident, shot, tally)
        row: dict[str, Any] = {
            "incident_id": incident.id,
            "number": shot.number,
            "method": shot.method,
            "lat": round(shot.lat, 7),
            "lon": round(shot.lon, 7),
            "radius_m": round(shot.radius_m, 1),
            "sensors": shot.sensor_count,
            "truth_index": None,
            "error_m": None,
            "covered": None,
            "verdict": "spurious",
        }
        rows.append(row)
        if event is None:
            continue
        events.append(event)
        tally.shot_rounds.add(event.index)
        error = distance_m(event.lat, event.lon, shot.lat, shot.lon)
        row.update({"truth_index": event.index, "error_m": round(error, 2)})
        if not shot.located:
            tally.areas += 1
            covered = error <= shot.radius_m
            tally.areas_covered += covered
            row.update({"covered": covered, "verdict": "area"})
        elif tally.best.get(event.index) != (incident.id, shot.number):
            row["verdict"] = "split"
        else:
            tally.located[event.index] = error
            tally.errors.append(error)
            row["verdict"] = "located"
    return rows, events


def _shot_event(incident: ObservedIncident, shot: ObservedShot, tally: _Tally) -> TruthEvent | None:
    heard = [tally.matched[d.message_id] for d in incident.members(shot)]
    return _majority([e for e in heard if e is not None and e.is_target])


def _choose_best(incidents: list[ObservedIncident], tally: _Tally) -> None:
    """For each event, the located shot that counts: most sensors, then smallest radius."""
    ranked: dict[int, tuple[tuple[int, float], tuple[str, int]]] = {}
    for incident in incidents:
        for shot in incident.shot_list():
            event = _shot_event(incident, shot, tally) if shot.located else None
            if event is None:
                continue
            rank = (-shot.sensor_count, shot.radius_m)
            if event.index not in ranked or rank < ranked[event.index][0]:
                ranked[event.index] = (rank, (incident.id, shot.number))
    tally.best = {index: where for index, (_, where) in ranked.items()}


def _score_incident(
    incident: ObservedIncident,
    truth: list[TruthEvent],
    tally: _Tally,
    per_class: dict[str, dict[str, int]],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    per_class[incident.label]["incidents"] += 1
    shot_rows, shot_events = _score_shots(incident, tally)
    tally.reported_rounds += len(shot_rows)
    heard = [tally.matched[d.message_id] for d in incident.detections]
    targets = [e for e in heard if e is not None and e.is_target]
    own = sorted(
        {e.index: e for e in targets if e.label == incident.label}.values(), key=lambda e: e.onset_s
    )
    groups = {_group(e) for e in shot_events}
    row: dict[str, Any] = {
        "id": incident.id,
        "label": incident.label,
        "method": incident.method,
        "lat": round(incident.lat, 7),
        "lon": round(incident.lon, 7),
        "radius_m": round(incident.radius_m, 1),
        "detections": len(incident.detections),
        "sensors": len({d.sensor_id for d in incident.detections}),
        "rounds": len(shot_rows),
        "rounds_matched": len({e.index for e in shot_events}),
        "truth_rounds": sum(1 for e in truth if e.is_target and _group(e) in groups),
        "truth_index": None,
        "truth_label": None,
        "error_m": None,
        "latency_s": None,
        "verdict": "false_alarm",
    }
    if not targets:
        tally.false_alarms += 1
        per_class[incident.label]["false_alarms"] += 1
        cause = next((e for e in heard if e is not None), None)  # a door, a crowd …
        if cause is not None:
            row.update({"truth_index": cause.index, "truth_label": cause.label})
        return row, shot_rows
    if not own:
        tally.mislabelled += 1
        per_class[incident.label]["mislabelled"] += 1
        actual = min(targets, key=lambda e: e.onset_s)
        row.update(
            {"verdict": "wrong_label", "truth_index": actual.index, "truth_label": actual.label}
        )
        return row, shot_rows
    founder = own[0]
    tally.detected |= {e.index for e in own}
    row.update(
        {
            "truth_index": founder.index,
            "truth_label": founder.label,
            "error_m": round(
                min(distance_m(e.lat, e.lon, incident.lat, incident.lon) for e in own), 2
            ),
        }
    )
    if all(e.index in tally.founded for e in own):
        tally.duplicates += 1
        row["verdict"] = "duplicate"
        return row, shot_rows
    tally.founded |= {e.index for e in own}
    row["verdict"] = "true"
    if incident.visible_s is not None:
        row["latency_s"] = round(incident.visible_s - founder.nearest_onset_s, 3)
        tally.latency.append(incident.visible_s - founder.nearest_onset_s)
    return row, shot_rows


def _truth_row(event: TruthEvent, tally: _Tally) -> dict[str, Any]:
    error = tally.located.get(event.index)
    return {
        "index": event.index,
        "label": event.label,
        "target": event.is_target,
        "group": event.group,
        "onset_s": round(event.onset_s, 3),
        "x": round(event.x, 1),
        "y": round(event.y, 1),
        "lat": round(event.lat, 7),
        "lon": round(event.lon, 7),
        "level_db_spl": event.level_db_spl,
        "source": event.source,
        "synthetic": event.synthetic,
        "nearest_sensor": event.nearest_sensor,
        "sensors_in_range": event.sensors_in_range,
        "detected": event.index in tally.detected,
        "located": error is not None,
        "error_m": None if error is None else round(error, 2),
    }


def _onset_errors(
    incidents: list[ObservedIncident],
    tally: _Tally,
    origin: datetime,
    clock_offsets_s: dict[str, float],
) -> list[float]:
    """|onset − true arrival| in ms of the first detection of each (event, sensor)."""
    firsts: dict[tuple[int, str], float] = {}
    detections = [d for i in incidents for d in i.detections]
    for d in sorted(detections, key=lambda d: d.onset):
        event = tally.matched.get(d.message_id)
        if event is None or (event.index, d.sensor_id) in firsts:
            continue
        onset = (d.onset - origin).total_seconds() - clock_offsets_s.get(d.sensor_id, 0.0)
        firsts[(event.index, d.sensor_id)] = onset - event.arrivals[d.sensor_id]
    return [abs(v) * 1000.0 for v in firsts.values()]


def score(
    truth: list[TruthEvent],
    incidents: list[ObservedIncident],
    origin: datetime,
    clock_offsets_s: dict[str, float],
    *,
    sensors: int,
    duration_s: float,
) -> dict[str, Any]:
    """The scorecard as a JSON-ready dict (see docs/twin.md for every key)."""
    tally = _Tally()
    for incident in incidents:
        for d in incident.detections:
            tally.matched[d.message_id] = match_detection(d, truth, origin, clock_offsets_s)
    per_class: dict[str, dict[str, int]] = defaultdict(
        lambda: {
            "events": 0,
            "detected": 0,
            "missed": 0,
            "incidents": 0,
            "false_alarms": 0,
            "mislabelled": 0,
        }
    )
    incident_rows: list[dict[str, Any]] = []
    shot_rows: list[dict[str, Any]] = []
    _choose_best(incidents, tally)
    for incident in sorted(incidents, key=lambda i: i.first_onset):
        row, shots = _score_incident(incident, truth, tally, per_class)
        incident_rows.append(row)
        shot_rows += shots
    detected = missed = 0
    for event in truth:
        if event.is_target:
            hit = event.index in tally.detected
            per_class[event.label]["events"] += 1
            per_class[event.label]["detected" if hit else "missed"] += 1
            detected += hit
            missed += not hit
    onset_errors = _onset_errors(incidents, tally, origin, clock_offsets_s)
    all_detections = [d for i in incidents for d in i.detections]
    return {
        "sensors": sensors,
        "duration_s": duration_s,
        "events": sum(e.is_target for e in truth),
        "detected": detected,
        "missed": missed,
        "false_alarms": tally.false_alarms,
        "mislabelled": tally.mislabelled,
        "duplicate_incidents": tally.duplicates,
        "incidents": len(incidents),
        "rounds": {
            "truth": sum(e.is_target for e in truth),
            "reported": tally.reported_rounds,
            "matched": len(tally.shot_rounds),
            "located": len(tally.located),
        },
        "per_class": {
            label: dict(counts)
            for label, counts in sorted(per_class.items())
            if is_target(label) or counts["incidents"]
        },
        "localisation_error_m": {
            "median": _percentile(tally.errors, 50),
            "p90": _percentile(tally.errors, 90),
            "max": round(max(tally.errors), 3) if tally.errors else None,
            "n": len(tally.errors),
            "area_n": tally.areas,
            "area_covered": tally.areas_covered,
        },
        "latency_s": {
            "p50": _percentile(tally.latency, 50),
            "p95": _percentile(tally.latency, 95),
            "n": len(tally.latency),
        },
        "detections": {
            "total": len(all_detections),
            "matched": sum(1 for d in all_detections if tally.matched.get(d.message_id)),
        },
        "onset_error_ms": {
            "median_abs": _percentile(onset_errors, 50),
            "p90_abs": _percentile(onset_errors, 90),
            "n": len(onset_errors),
        },
        "truth": [_truth_row(event, tally) for event in truth],
        "incident_list": incident_rows,
        "shot_list": shot_rows,
    }


def all_labels() -> list[str]:
    return [label.value for label in EVENT_LABELS]


def aggregate(cards: list[dict[str, Any]]) -> dict[str, Any]:
    """One scorecard over several runs (``ouie demo``): counts add up, errors and latencies
    are pooled from every run's shots and incidents, CPU is averaged over audio time."""
    shots = [row for card in cards for row in card.get("shot_list", [])]
    errors = [float(row["error_m"]) for row in shots if row["verdict"] == "located"]
    areas = [row for row in shots if row["verdict"] == "area"]
    latencies = [
        float(row["latency_s"])
        for card in cards
        for row in card["incident_list"]
        if row["latency_s"] is not None
    ]
    per_class: dict[str, dict[str, int]] = {}
    for card in cards:
        for label, counts in card["per_class"].items():
            into = per_class.setdefault(label, dict.fromkeys(counts, 0))
            for key, value in counts.items():
                into[key] = into.get(key, 0) + value
    rounds: dict[str, int] = {}
    for card in cards:
        for key, value in card.get("rounds", {}).items():
            rounds[key] = rounds.get(key, 0) + int(value)
    duration = sum(float(card["duration_s"]) for card in cards)
    cpu_s = sum(float(card["node_cpu"]["total_cpu_s"]) for card in cards)
    sensor_seconds = sum(float(card["duration_s"]) * int(card["sensors"]) for card in cards)
    return {
        "runs": len(cards),
        "duration_s": duration,
        "events": sum(int(card["events"]) for card in cards),
        "detected": sum(int(card["detected"]) for card in cards),
        "missed": sum(int(card["missed"]) for card in cards),
        "false_alarms": sum(int(card["false_alarms"]) for card in cards),
        "mislabelled": sum(int(card.get("mislabelled", 0)) for card in cards),
        "duplicate_incidents": sum(int(card["duplicate_incidents"]) for card in cards),
        "incidents": sum(int(card["incidents"]) for card in cards),
        "rounds": rounds,
        "per_class": dict(sorted(per_class.items())),
        "localisation_error_m": {
            "median": _percentile(errors, 50),
            "p90": _percentile(errors, 90),
            "max": round(max(errors), 3) if errors else None,
            "n": len(errors),
            "area_n": len(areas),
            "area_covered": sum(1 for row in areas if row["covered"]),
        },
        "latency_s": {
            "p50": _percentile(latencies, 50),
            "p95": _percentile(latencies, 95),
            "n": len(latencies),
        },
        "node_cpu": {
            "percent_of_core_mean": round(100.0 * cpu_s / sensor_seconds, 3)
            if sensor_seconds
            else None,
            "total_cpu_s": round(cpu_s, 3),
        },
        "sources": combine([card["sources"] for card in cards if card.get("sources")]),
        # one classifier for the whole demo: every run shares it
        "backend": cards[0].get("backend") if cards else None,
        "model_id": cards[0].get("model_id") if cards else None,
        "wall_s": round(sum(float(card["wall_s"]) for card in cards), 2),
        "scenarios": cards,
    }
