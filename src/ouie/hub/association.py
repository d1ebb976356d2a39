"""Which detections are one sound, which sounds are one incident: association by geometry.

For the impulsive classes (gunshot, explosion, glass breaking, vehicle crash) the label a
sensor gives does not decide anything here: a shot heard as breaking glass by the near,
clipping sensors and as a gunshot by the far ones is one sound. What decides is whether the
onsets fit one source position and time.

1. **Shots.** Detections are taken in onset order (ties by message id). Each joins the shot
   it fits best among those still open (begun within the longest travel time across
   ``max_separation_m``), or opens a new one. A detection fits a shot when its sensor is not
   already in it and, for every sensor in it, ``|t − t_j| ≤ d(s, s_j)/c + tolerance``; once
   the shot has 3 sensors the 4 onsets must also fit one source (``locate.consistent``),
   and from 4 sensors on the onset must match the arrival the shot's quick fix predicts at
   this sensor, within the tolerance. So a detection that fails the timing test of the
   current shot opens the next round rather than being folded into it. Preference: a
   predicted fit (smallest miss), then a consistent one, then the shot with most sensors.
   A second detection from a sensor within ``SAME_SOUND_S`` of its first in a shot,
   starting before that sensor's event in the shot ended (``CONTINUATION_S``), or of
   another label less than ``RELABEL_S`` after it, is the same sound (a node switching
   label halfway stamps the second onset where the label changed, not where the sound
   arrived): it adds evidence, not a round, and is not used to fix.
   **Reported onsets** (``ImpulseOnsetMessage``: a time and a level that a sensor gives on
   the hub's request, no label) never found a shot. A shot that 2 or 3 sensors classified
   takes them from further sensors only when they bring it to 4 sensors or more whose
   onsets fit one source within ``ONSET_FIT_S`` (an over-determined fit, so an onset that is
   another sound fails it rather than moving the fix); one that a single sensor classified,
   only when they bring it to 5. The nearest sensors' candidates are tried in every
   combination, then further sensors are added where the fit predicts them. They count for
   the fix, never for the label.
2. Each shot is **located on its own** (``locate.locate_many``: TDOA with ≥ 3 sensors, an
   approximate area otherwise or when the fit fails).
3. **Bursts.** Two shots belong to one incident when the later one is at most
   ``burst_window_s`` after the earlier and their positions are within ``burst_radius_m``
   plus their uncertainty radii (each counted up to ``burst_radius_m``, so an approximate
   area cannot pull in the whole site). Incidents are the connected groups.
4. **Label** from the evidence of all members: the sum of detection weights (peak score,
   halved for a clipped recording, whose distorted spectrum misleads classifiers) per
   label; with several rounds, gunshot evidence is multiplied by ``1 + 0.5 (rounds − 1)``
   (at most 3): a sound that repeats from one place is far likelier gunfire than glass
   breaking or a crash. Equal evidence goes to the more serious class.

Everything here is a function of the set of detections, not of the order they arrived in
(fusion re-runs it over all open incidents a batch could touch), which
``tests/hub/test_association.py`` checks by permuting arrival orders.
"""

from __future__ import annotations

import itertools
import math
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ouie.config.hub import farthest_reach
from ouie.hub.fixes import Fix, Observation
from ouie.hub.locate import consistent, locate_many, quick_fit

IMPULSIVE_LABELS: frozenset[str] = frozenset(
    {"gunshot", "explosion", "glass_breaking", "vehicle_crash"}
)
#: A recording this close to full scale is treated as clipped.
CLIPPED_DBFS = -1.0
CLIPPED_WEIGHT = 0.5
REPEAT_GAIN = 0.5
REPEAT_CAP = 3.0
#: Re-fit the quick prediction when a shot reaches these sensor counts.
QUICK_REFITS = frozenset({4, 6, 10, 16})
#: A second detection from a sensor within this of its first one in a shot is the same
#: sound given another label (or reported twice), not a new round.
SAME_SOUND_S = 0.01
#: A detection from a sensor that starts before (or this soon after) the end of that
#: sensor's event in a shot continues the same sound: a node that switches label halfway
#: (clipped windows called glass, the tail a gunshot) stamps the second event's onset where
#: the label changed, not where the sound arrived, so it must not found a round of its own.
CONTINUATION_S = 0.05
#: ... and so does a detection of another label from that sensor less than this after its
#: first in the shot (the node's own merge gap: within it, one label would have been one
#: event). A second round that sensor calls differently this soon only adds evidence.
RELABEL_S = 1.0
#: Equal evidence: the more serious class is reported (an operator can dismiss it).
SEVERITY = ("gunshot", "explosion", "vehicle_crash", "glass_breaking")
#: Reported onsets join a shot of at least this many classified sensors ...
ONSET_MIN_DETECTIONS = 1
#: ... only when they bring it to this many sensors (one more equation than unknowns), or
#: to ``ONSET_MIN_SENSORS_ALONE`` where one sensor alone classified it (two more: only
#: one arrival then says which sound the shot is) ...
ONSET_MIN_SENSORS = 4
ONSET_MIN_SENSORS_ALONE = 5
#: ... whose onsets all fit one source within this (every residual, as travel time).
ONSET_FIT_S = 0.02
#: The nearest sensors with candidates tried in every combination, and the most candidates
#: of one sensor tried (the most prominent): bounds the search to a few hundred fits.
ONSET_SEARCH_SENSORS = 5
ONSET_CANDIDATES = 4


def is_impulsive(label: str) -> bool:
    return label in IMPULSIVE_LABELS


@dataclass(frozen=True)
class Heard:
    """One detection as association sees it."""

    key: str  # message id: breaks ties, so results depend on the set, never on arrival order
    sensor: int
    onset: float  # epoch seconds
    label: str
    weight: float  # evidence for ``label``
    strength: float  # level (dB), for the fit's bookkeeping only
    position: tuple[float, float, float]  # sensor ENU metres
    end: float = -math.inf  # the event's offset (epoch s); -inf: unknown
    #: a reported impulse onset (no label, weight 0): joins a shot's fix, never founds one
    onset_only: bool = False


def evidence_weight(score: float, level_dbfs: float) -> float:
    """A detection's vote: its peak score, halved when the recording clipped."""
    return score * (CLIPPED_WEIGHT if level_dbfs >= CLIPPED_DBFS else 1.0)


@dataclass(frozen=True)
class Params:
    c: float
    source_up: float
    tolerance_s: float
    onset_sigma_s: float
    max_separation_m: float
    hearing_m: float
    max_solution_distance_m: float
    burst_window_s: float
    burst_radius_m: float
    # per label, how far a sensor may detect it, for a shot's approximate area (labels not
    # listed: ``hearing_m``); pairs, so that the parameters stay hashable (``FitCache``)
    area_ranges: tuple[tuple[str, float], ...] = ()

    def area_hearing(self, labels: Iterable[str]) -> float:
        """A shot's area range: the farthest-carrying of the labels its sensors gave."""
        return farthest_reach(dict(self.area_ranges), self.hearing_m, labels)


@dataclass
class Shot:
    """One sound: the detections of it and where it came from (one detection per sensor
    locates it; a sensor's further detections of the same sound only add evidence)."""

    members: list[Heard]
    by_sensor: dict[int, Heard] = field(default_factory=dict)
    quick: tuple[float, float, float] | None = None  # (east, north, t0) while grouping
    fix: Fix | None = None
    t0: float = 0.0  # emission time (epoch s): the fit's, or the area's estimate
    used: frozenset[str] = frozenset()  # keys of the members the fix relied on

    def __post_init__(self) -> None:
        for h in self.members:
            self.by_sensor.setdefault(h.sensor, h)

    @property
    def locating(self) -> list[Heard]:
        """One detection per sensor (its first): what the fix is made from."""
        return list(self.by_sensor.values())

    @property
    def start(self) -> float:
        return self.members[0].onset

    @property
    def end(self) -> float:
        return self.members[-1].onset

    @property
    def located(self) -> bool:
        return self.fix is not None and self.fix.method == "tdoa"

    @property
    def radius_m(self) -> float:
        return math.inf if self.fix is None else self.fix.radius_m

    @property
    def classified(self) -> list[Heard]:
        """The members that are detections (not reported onsets)."""
        return [h for h in self.members if not h.onset_only]

    def label(self) -> str:
        return _vote({h.label: h.weight for h in self.classified}, 1)


@dataclass
class Burst:
    """One incident: its shots in time order, the label the evidence gives, the best fix."""

    shots: list[Shot]
    label: str
    evidence: dict[str, float]
    best: int  # index in ``shots`` of the best-conditioned fix

    @property
    def members(self) -> list[Heard]:
        return [h for shot in self.shots for h in shot.members]

    @property
    def detections(self) -> list[Heard]:
        return [h for shot in self.shots for h in shot.classified]


def _distance(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    return math.dist(a, b)


def _consistent(shot: Shot, heard: Heard, p: Params, cache: FitCache | None) -> bool:
    members = [*shot.by_sensor.values(), heard]
    keys = tuple(h.key for h in members)
    cached = cache.get("consistent", p, keys) if cache is not None else None
    if isinstance(cached, bool):
        return cached
    positions = np.array([h.position for h in members], dtype=np.float64)
    onsets = np.array([h.onset for h in members], dtype=np.float64)
    result = consistent(positions, onsets, p.c, p.source_up, p.tolerance_s * p.c)
    if cache is not None:
        cache.put("consistent", p, keys, result)
    return result


def _fit_rank(
    shot: Shot, heard: Heard, p: Params, cache: FitCache | None = None
) -> tuple[int, float, int, float, str] | None:
    """How well ``heard`` fits ``shot`` (lower is better), or None when it cannot be it."""
    own = shot.by_sensor.get(heard.sensor)
    if own is not None:
        mine = [h for h in shot.members if h.sensor == heard.sensor]
        limit = max(own.onset + SAME_SOUND_S, max(h.end for h in mine) + CONTINUATION_S)
        if all(h.label != heard.label for h in mine):
            limit = max(limit, own.onset + RELABEL_S)
        if own.onset - SAME_SOUND_S <= heard.onset <= limit:
            return (-1, abs(heard.onset - own.onset), 0, shot.start, shot.members[0].key)
        return None
    if not _reachable(heard, shot.by_sensor.values(), p):
        return None
    tie = (-len(shot.by_sensor), shot.start, shot.members[0].key)
    if shot.quick is not None:
        east, north, t0 = shot.quick
        predicted = t0 + _distance((east, north, p.source_up), heard.position) / p.c
        miss = abs(heard.onset - predicted)
        if miss > p.tolerance_s:
            return None
        return (0, miss, *tie)
    if len(shot.by_sensor) >= 3:
        if not _consistent(shot, heard, p, cache):
            return None
        return (1, 0.0, *tie)
    return (2, 0.0, *tie)


def _add(shot: Shot, heard: Heard, p: Params, cache: FitCache | None = None) -> None:
    shot.members.append(heard)
    if heard.sensor in shot.by_sensor:
        return  # the same sound again: evidence for the label, nothing for the fit
    shot.by_sensor[heard.sensor] = heard
    n = len(shot.by_sensor)
    if n in QUICK_REFITS or (n > 4 and shot.quick is None):
        members = list(shot.by_sensor.values())
        keys = tuple(h.key for h in members)
        cached = cache.get("quick", p, keys) if cache is not None else None
        if isinstance(cached, tuple):
            quick = cached
        else:
            positions = np.array([h.position for h in members], dtype=np.float64)
            onsets = np.array([h.onset for h in members], dtype=np.float64)
            fit = quick_fit(positions, onsets, p.c, p.source_up)
            good = fit is not None and fit[3] <= p.tolerance_s * p.c
            quick = (fit[0], fit[1], fit[2]) if fit is not None and good else _NO_FIT
            if cache is not None:
                cache.put("quick", p, keys, quick)
        shot.quick = None if math.isnan(quick[0]) else quick


def group_shots(heard: Sequence[Heard], p: Params, cache: FitCache | None = None) -> list[Shot]:
    """Detections → shots (step 1 of the module docstring)."""
    span = p.max_separation_m / p.c + p.tolerance_s
    shots: list[Shot] = []
    active: list[Shot] = []
    for h in sorted(heard, key=lambda h: (h.onset, h.key)):
        active = [s for s in active if h.onset - s.start <= span]
        best: Shot | None = None
        best_rank: tuple[int, float, int, float, str] | None = None
        for shot in active:
            rank = _fit_rank(shot, h, p, cache)
            if rank is not None and (best_rank is None or rank < best_rank):
                best, best_rank = shot, rank
        if best is None:
            best = Shot([h])
            shots.append(best)
            active.append(best)
        else:
            _add(best, h, p, cache)
    return shots


class FitCache:
    """Fits already made, by the exact detections (and parameters) they came from: fusion
    re-associates a neighbourhood every batch, and shots whose members did not change are
    neither re-checked nor re-solved. Bounded, least recently used first out."""

    def __init__(self, size: int = 8192) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[str, Params, tuple[str, ...]], object] = OrderedDict()
        self.hits = 0

    def get(self, kind: str, p: Params, keys: tuple[str, ...]) -> object | None:
        entry = self._entries.get((kind, p, keys))
        if entry is not None:
            self._entries.move_to_end((kind, p, keys))
            self.hits += 1
        return entry

    def put(self, kind: str, p: Params, keys: tuple[str, ...], value: object) -> None:
        self._entries[(kind, p, keys)] = value
        self._entries.move_to_end((kind, p, keys))
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)


#: No quick fit (fewer than 4 sensors, or one whose residuals are too large), cached as such.
_NO_FIT = (math.nan, math.nan, math.nan)


def locate_shots(shots: Sequence[Shot], p: Params, cache: FitCache | None = None) -> None:
    """Give every shot its own fix or area (step 2)."""
    todo: list[tuple[Shot, tuple[str, ...]]] = []
    reach: list[float] = []
    for shot in shots:
        hearing = p.area_hearing({h.label for h in shot.classified})
        keys = (*(h.key for h in shot.locating), f"area:{hearing}")
        fix = cache.get("fix", p, keys) if cache is not None else None
        if isinstance(fix, Fix):
            _set_fix(shot, fix)
        else:
            todo.append((shot, keys))
            reach.append(hearing)
    problems = [
        [
            Observation(h.position[0], h.position[1], h.position[2], h.onset - s.start, h.strength)
            for h in s.locating
        ]
        for s, _ in todo
    ]
    fixes = locate_many(
        problems,
        p.c,
        onset_sigma_s=p.onset_sigma_s,
        fallback_radius_m=p.hearing_m,
        source_up=p.source_up,
        max_distance_m=p.max_solution_distance_m,
        timing_tolerance_s=p.tolerance_s,
        area_hearing_m=reach,
    )
    for (shot, keys), fix in zip(todo, fixes, strict=True):
        _set_fix(shot, fix)
        if cache is not None:
            cache.put("fix", p, keys, fix)


def _set_fix(shot: Shot, fix: Fix) -> None:
    shot.fix = fix
    shot.t0 = shot.start + (fix.t0_s if fix.t0_s is not None else 0.0)
    locating = shot.locating
    shot.used = frozenset(locating[i].key for i in fix.used)


def _uncertainty(shot: Shot, p: Params) -> float:
    """How far a shot's source may be from its fix: an area's whole extent (the source is
    anywhere in it, and a wide one's centre may be hundreds of metres from it); a point's
    ellipse, at most ``burst_radius_m``."""
    assert shot.fix is not None
    if shot.fix.method == "area":
        return shot.fix.radius_m
    return min(shot.fix.radius_m, p.burst_radius_m)


def _near(a: Shot, b: Shot, p: Params) -> bool:
    """Whether two shots may have come from within ``burst_radius_m`` of each other."""
    assert a.fix is not None and b.fix is not None
    reach = p.burst_radius_m + _uncertainty(a, p) + _uncertainty(b, p)
    return math.hypot(a.fix.east - b.fix.east, a.fix.north - b.fix.north) <= reach


def link_shots(shots: Sequence[Shot], p: Params) -> list[list[Shot]]:
    """Located shots → groups of rounds (step 3), each in time order, groups by first round."""
    order = sorted(shots, key=lambda s: (s.t0, s.members[0].key))
    parent = list(range(len(order)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, a in enumerate(order):
        for j in range(i + 1, len(order)):
            b = order[j]
            if b.t0 - a.t0 > p.burst_window_s:
                break
            if _near(a, b, p):
                ri, rj = root(i), root(j)
                if ri != rj:
                    parent[max(ri, rj)] = min(ri, rj)
    groups: dict[int, list[Shot]] = defaultdict(list)
    for i, shot in enumerate(order):
        groups[root(i)].append(shot)
    return [groups[k] for k in sorted(groups)]


def _severity(label: str) -> int:
    return SEVERITY.index(label) if label in SEVERITY else len(SEVERITY)


def _vote(evidence: dict[str, float], rounds: int) -> str:
    scored = dict(evidence)
    if rounds > 1 and "gunshot" in scored:
        scored["gunshot"] *= min(REPEAT_CAP, 1.0 + REPEAT_GAIN * (rounds - 1))
    return min(scored, key=lambda label: (-round(scored[label], 9), _severity(label), label))


def burst_label(shots: Sequence[Shot]) -> tuple[str, dict[str, float]]:
    """The incident's label and the evidence per label (step 4)."""
    evidence: dict[str, float] = defaultdict(float)
    for shot in shots:
        for h in shot.classified:
            evidence[h.label] += h.weight
    return _vote(evidence, len(shots)), {k: round(v, 4) for k, v in sorted(evidence.items())}


def best_shot(shots: Sequence[Shot]) -> int:
    """The best-conditioned fix: a TDOA fix from ≥ 4 sensors with the smallest ellipse, else
    the smallest TDOA ellipse, else the smallest approximate area."""

    def key(i: int) -> tuple[int, float, int]:
        shot = shots[i]
        if shot.located:
            return (0 if len(shot.used) >= 4 else 1, shot.radius_m, i)
        return (2, shot.radius_m, i)

    return min(range(len(shots)), key=key)


def _onset_fit(
    chosen: Sequence[Heard], p: Params, cache: FitCache | None
) -> tuple[float, float, float, float] | None:
    """The quick fit of ``chosen`` when every onset fits it within ``ONSET_FIT_S``."""
    keys = tuple(sorted(h.key for h in chosen))
    cached = cache.get("onsetfit", p, keys) if cache is not None else None
    if isinstance(cached, tuple):
        return None if math.isnan(cached[0]) else cached
    ordered = sorted(chosen, key=lambda h: h.key)
    positions = np.array([h.position for h in ordered], dtype=np.float64)
    onsets = np.array([h.onset for h in ordered], dtype=np.float64)
    fit = quick_fit(positions, onsets, p.c, p.source_up)
    good = fit if fit is not None and fit[3] <= ONSET_FIT_S * p.c else None
    if cache is not None:
        cache.put("onsetfit", p, keys, good if good is not None else (*_NO_FIT, math.nan))
    return good


def _reachable(h: Heard, others: Iterable[Heard], p: Params) -> bool:
    """Whether ``h`` can be the same sound as each of ``others`` (travel time bound)."""
    for other in others:
        d = _distance(h.position, other.position)
        if d > p.max_separation_m or abs(h.onset - other.onset) > d / p.c + p.tolerance_s:
            return False
    return True


def _onset_candidates(
    shot: Shot, pool: Sequence[Heard], taken: set[str], p: Params
) -> dict[int, list[Heard]]:
    """Per sensor not in ``shot``, the onsets not yet taken that can be its sound (the most
    prominent ``ONSET_CANDIDATES``, in time order)."""
    members = shot.locating
    candidates: dict[int, list[Heard]] = {}
    for h in pool:  # in (onset, key) order
        if h.key not in taken and h.sensor not in shot.by_sensor and _reachable(h, members, p):
            candidates.setdefault(h.sensor, []).append(h)
    for sensor, heard in candidates.items():
        if len(heard) > ONSET_CANDIDATES:
            kept = sorted(heard, key=lambda h: (-h.strength, h.key))[:ONSET_CANDIDATES]
            candidates[sensor] = sorted(kept, key=lambda h: (h.onset, h.key))
    return candidates


def _best_completion(
    members: list[Heard],
    candidates: dict[int, list[Heard]],
    order: list[int],
    need: int,
    p: Params,
    cache: FitCache | None,
) -> list[Heard] | None:
    """The ``need`` onsets of the nearest sensors whose fit with ``members`` leaves the
    smallest worst residual (every combination tried), or None when none fits."""
    best: tuple[float, tuple[str, ...], list[Heard]] | None = None
    for sensors in itertools.combinations(order[:ONSET_SEARCH_SENSORS], need):
        for picked in itertools.product(*(candidates[k] for k in sensors)):
            extra = list(picked)
            if not all(_reachable(h, extra[:i], p) for i, h in enumerate(extra)):
                continue
            fit = _onset_fit([*members, *extra], p, cache)
            if fit is None:
                continue
            rank = (fit[3], tuple(sorted(h.key for h in extra)))
            if best is None or rank < best[:2]:
                best = (*rank, extra)
    return None if best is None else best[2]


def _extend_by_prediction(
    chosen: list[Heard],
    candidates: dict[int, list[Heard]],
    order: list[int],
    p: Params,
    cache: FitCache | None,
) -> None:
    """Add the further sensors' onsets where the fit of ``chosen`` predicts them."""
    fit = _onset_fit(chosen, p, cache)
    for sensor in order:
        if fit is None:
            return
        if any(h.sensor == sensor for h in chosen):
            continue
        east, north, t0, _ = fit
        source = (east, north, p.source_up)
        ranked = sorted(
            (abs(h.onset - t0 - _distance(source, h.position) / p.c), h.key, h)
            for h in candidates[sensor]
        )
        for miss, _, h in ranked:
            if miss > ONSET_FIT_S:
                break
            refit = _onset_fit([*chosen, h], p, cache)
            if refit is not None:
                chosen.append(h)
                fit = refit
                break


def attach_onsets(
    shots: Sequence[Shot], onsets: Sequence[Heard], p: Params, cache: FitCache | None = None
) -> None:
    """Reported onsets → the shots they complete (step 1, last paragraph)."""
    if not onsets:
        return
    taken: set[str] = set()
    pool = sorted(onsets, key=lambda h: (h.onset, h.key))
    for shot in sorted(shots, key=lambda s: (s.start, s.members[0].key)):
        members = shot.locating
        if not ONSET_MIN_DETECTIONS <= len(members) < ONSET_MIN_SENSORS:
            continue
        need = (ONSET_MIN_SENSORS_ALONE if len(members) == 1 else ONSET_MIN_SENSORS) - len(members)
        candidates = _onset_candidates(shot, pool, taken, p)
        if len(candidates) < need:
            continue
        nearness = {
            k: min(_distance(heard[0].position, m.position) for m in members)
            for k, heard in candidates.items()
        }
        order = sorted(candidates, key=lambda k: (nearness[k], k))
        completion = _best_completion(members, candidates, order, need, p, cache)
        if completion is None:
            continue
        chosen = [*members, *completion]
        _extend_by_prediction(chosen, candidates, order, p, cache)
        for h in chosen[len(members) :]:
            taken.add(h.key)
            shot.members.append(h)
            shot.by_sensor[h.sensor] = h
        shot.members.sort(key=lambda h: (h.onset, h.key))


def associate(
    heard: Sequence[Heard],
    p: Params,
    cache: FitCache | None = None,
    onsets: Sequence[Heard] = (),
) -> list[Burst]:
    """Impulsive detections → incidents of located shots (the whole module in one call);
    ``onsets``, reported impulse onsets, only complete shots the detections made.
    ``cache`` only saves work: the result is the same with or without it."""
    shots = group_shots(heard, p, cache)
    attach_onsets(shots, onsets, p, cache)
    locate_shots(shots, p, cache)
    bursts = []
    for group in link_shots(shots, p):
        label, evidence = burst_label(group)
        bursts.append(Burst(group, label, evidence, best_shot(group)))
    return bursts
