"""Where did it happen: TDOA multilateration from onset times, with a 95 % error ellipse.

Model: a source at horizontal position ``p`` (local ENU metres, at a fixed height) emits at
an unknown time ``t0``; sensor ``i`` at ``s_i`` hears it at ``t_i = t0 + |p - s_i| / c``.
The unknowns ``(x, y, t0)`` are fitted by robust non-linear least squares
(``scipy.optimize.least_squares``, soft-L1 loss) on residuals in metres, from several
starting points. Sensors whose residual stays far above the fit's robust scale are
dropped one at a time (at least 3 kept) and the fit repeated, so one wrong onset (a late
echo, a bad clock) does not drag the fix.

The covariance of ``(x, y)`` is ``σ² (JᵀJ)⁻¹`` from the Jacobian at the solution, with ``σ``
the larger of the prior timing error (× c) and the residual scale; the 95 % ellipse has
semi-axes ``√(χ²₂(0.95) λ)`` along the eigenvectors. With fewer than 3 sensors, or when the
fit fails (no solution, a solution more than ``max_distance_m`` from the sensors, a
residual RMS beyond the timing tolerance, an ellipse wider than a sensor's hearing range),
no point is made up: ``hub/area.py`` gives the region consistent with the onsets and the
hearing range instead (``method="area"``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from ouie.hub.area import approximate_area
from ouie.hub.fixes import CHI2_2DOF_95, Fix, FloatArray, Observation, axes_angle

__all__ = ["Fix", "Observation", "consistent", "locate", "locate_many", "quick_fit"]


@dataclass(frozen=True)
class _AreaBounds:
    """What the approximate area needs when a fit fails."""

    c: float
    hearing_m: float  # the plausibility checks' range (second crossings, ellipse size)
    tolerance_s: float
    source_up: float
    area_hearing_m: float | None = None  # how far this sound may carry (None: ``hearing_m``)
    use_timing: bool = True

    def area(self, observations: list[Observation]) -> Fix:
        return approximate_area(
            observations,
            self.c,
            hearing_m=self.hearing_m if self.area_hearing_m is None else self.area_hearing_m,
            tolerance_s=self.tolerance_s,
            source_up=self.source_up,
            use_timing=self.use_timing,
        )


def _linearised(
    positions: FloatArray, t: FloatArray, c: float, source_up: float
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """The first sensor's range equation subtracted from the others':
    ``a_xy · (x, y) + 2 d r_1 = b`` with ``r_i = r_1 + d_i``. Returns ``a_xy``, ``d``, ``b``
    and the first sensor's position, all relative to the source's plane."""
    shifted = positions - np.array([0.0, 0.0, source_up])
    ref = int(np.argmin(t))
    others = [i for i in range(len(t)) if i != ref]
    s1 = shifted[ref]
    d = (t[others] - t[ref]) * c
    si = shifted[others]
    a_xy = 2.0 * (si[:, :2] - s1[:2])
    b = np.sum(si**2, axis=1) - float(np.sum(s1**2)) - d**2
    return a_xy, d, b, s1


def _linear_start(
    positions: FloatArray, t: FloatArray, c: float, source_up: float
) -> FloatArray | None:
    """Closed-form (linearised) TDOA solution for ≥ 4 sensors, the non-linear fit's start.

    With ``r_i = r_1 + c (t_i - t_1)``, subtracting sensor 1's range equation from the
    others gives equations linear in ``(x, y, r_1)``.
    """
    if len(t) < 4:
        return None
    a_xy, d, b, _first = _linearised(positions, t, c, source_up)
    a = np.column_stack([a_xy, 2.0 * d])
    try:
        solution, *_ = np.linalg.lstsq(a, b, rcond=None)
    except np.linalg.LinAlgError:
        return None
    if not np.all(np.isfinite(solution)):
        return None
    out: FloatArray = np.asarray(solution[:2], dtype=np.float64)
    return out


class _TdoaModel:
    """Range residuals (m) of ``v = (x, y, t0)`` and their Jacobian, for one problem
    (``positions [n, 3]``, ``t [n]``) or a stack of them (``[m, n, 3]``, ``[m, n]``, with
    ``v [m, 3]``): the robust fit, the consistency check and the batched solver share it.
    ``t`` is relative to the earliest onset, so ``t0`` is too."""

    def __init__(self, positions: FloatArray, t: FloatArray, c: float, source_up: float) -> None:
        self.positions = positions
        self.t = t
        self.c = c
        self._dz2 = (positions[..., 2] - source_up) ** 2

    def _offsets(self, v: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        dx = v[..., None, 0] - self.positions[..., 0]
        dy = v[..., None, 1] - self.positions[..., 1]
        return dx, dy, np.sqrt(dx**2 + dy**2 + self._dz2)

    def residuals(self, v: FloatArray) -> FloatArray:
        _, _, d = self._offsets(v)
        out: FloatArray = d - (self.t - v[..., None, 2]) * self.c
        return out

    def jacobian(self, v: FloatArray) -> FloatArray:
        dx, dy, d = self._offsets(v)
        d = np.maximum(d, 1e-6)  # a source on a sensor: any direction will do
        jac: FloatArray = np.stack([dx / d, dy / d, np.full_like(d, self.c)], axis=-1)
        return jac


def _gauss_newton(
    residuals: Callable[[FloatArray], FloatArray],
    jacobian: Callable[[FloatArray], FloatArray],
    x0: FloatArray,
    iterations: int = 15,
) -> FloatArray | None:
    """Damped Gauss-Newton on the plain squared residuals (a few hundred microseconds)."""
    x = x0.astype(np.float64)
    cost = float(np.sum(residuals(x) ** 2))
    damping = 1e-6
    for _ in range(iterations):
        r = residuals(x)
        j = jacobian(x)
        jtj = j.T @ j
        try:
            step = np.linalg.solve(jtj + damping * np.diag(np.diag(jtj)), -j.T @ r)
        except np.linalg.LinAlgError:
            return None
        candidate = x + step
        new_cost = float(np.sum(residuals(candidate) ** 2))
        if not math.isfinite(new_cost):
            return None
        if new_cost <= cost:
            converged = cost - new_cost <= 1e-12 * max(cost, 1e-12) + 1e-14
            x, cost = candidate, new_cost
            damping = max(damping / 10.0, 1e-9)
            if converged or float(np.max(np.abs(step[:2]))) < 1e-5:
                break
        else:
            damping *= 10.0
            if damping > 1e6:
                break
    return x if np.all(np.isfinite(x)) else None


def _solve(
    positions: FloatArray, onsets: FloatArray, c: float, source_up: float, scale_m: float
) -> tuple[FloatArray, float, FloatArray] | None:
    """Best (x, y, t0), its cost and the Jacobian, over a few starting points."""
    ref = float(onsets.min())
    t = onsets - ref
    model = _TdoaModel(positions, t, c, source_up)
    residuals, jacobian = model.residuals, model.jacobian

    centroid = positions[:, :2].mean(axis=0)
    first = positions[int(np.argmin(t)), :2]
    starts: list[FloatArray] = []
    linear = _linear_start(positions, t, c, source_up)
    if linear is not None:
        starts.append(linear)
    starts += [centroid, first]
    if linear is None:
        spread = float(np.max(np.linalg.norm(positions[:, :2] - centroid, axis=1))) + 1.0
        for angle in np.linspace(0.0, 2 * math.pi, 4, endpoint=False):
            offset = 1.5 * spread * np.array([math.cos(angle), math.sin(angle)])
            starts.append(centroid + offset)
    if linear is not None:
        # fast path: Gauss-Newton from the closed-form start; kept only when every residual
        # is at the noise level (then the soft-L1 optimum is the least-squares one)
        d0 = float(np.linalg.norm(linear - first))
        fast = _gauss_newton(residuals, jacobian, np.array([linear[0], linear[1], -d0 / c]))
        if fast is not None and float(np.max(np.abs(residuals(fast)))) <= 3.0 * scale_m:
            return fast, float(np.sqrt(np.mean(residuals(fast) ** 2))), jacobian(fast)
    best: tuple[FloatArray, float, FloatArray] | None = None
    for start in starts:
        d0 = float(np.linalg.norm(start - first))
        x0 = np.array([start[0], start[1], -d0 / c])
        try:
            result = least_squares(
                residuals,
                x0,
                jac=jacobian,
                loss="soft_l1",
                f_scale=scale_m,
                method="trf",
                x_scale=np.array([10.0, 10.0, 10.0 / c]),
                max_nfev=60,
            )
        except (ValueError, np.linalg.LinAlgError):
            continue
        if not np.all(np.isfinite(result.x)):
            continue
        if best is None or result.cost < best[1]:
            best = (result.x, float(result.cost), result.jac)
        if float(np.sqrt(np.mean(result.fun**2))) <= 2.0 * scale_m:
            break  # a fit at the noise level: other starts cannot do meaningfully better
    if best is None:
        return None
    x, _, _ = best
    return x, float(np.sqrt(np.mean(residuals(x) ** 2))), jacobian(x)


def locate(
    observations: list[Observation],
    speed_of_sound_m_s: float,
    onset_sigma_s: float = 0.002,
    fallback_radius_m: float = 150.0,
    source_up: float = 0.0,
    max_distance_m: float = 2000.0,
    outlier_factor: float = 4.0,
    timing_tolerance_s: float = 0.05,
    area_hearing_m: float | None = None,
    vague_onsets: bool = False,
) -> Fix:
    """A position for one sound heard by ``observations`` (one per sensor), or, when none
    can be fixed, the area it came from (``fallback_radius_m``: how far a sensor hears;
    ``area_hearing_m``: how far this sound may carry, for its area, default the same;
    ``timing_tolerance_s``: the clock and onset slack the area allows).

    ``vague_onsets`` (sustained sounds, whose onset is where a rise was found in their first
    window, or its start): three sensors fit any three onsets exactly, so a point needs at
    least four that one source explains; the area, when no point is given, comes from the
    hearing ranges alone, as time differences that are off by a window would move it."""
    if not observations:
        raise ValueError("no observations to locate from")
    bounds = _AreaBounds(
        speed_of_sound_m_s,
        fallback_radius_m,
        timing_tolerance_s,
        source_up,
        area_hearing_m,
        use_timing=not vague_onsets,
    )
    if len(observations) < (MIN_VAGUE_SENSORS if vague_onsets else 3):
        return bounds.area(observations)
    c = speed_of_sound_m_s
    prior_m = onset_sigma_s * c
    all_pos = np.array([[o.east, o.north, o.up] for o in observations], dtype=np.float64)
    all_t = np.array([o.onset_s for o in observations], dtype=np.float64)
    keep = list(range(len(observations)))
    solved: tuple[FloatArray, float, FloatArray] | None = None
    while True:
        solved = _solve(all_pos[keep], all_t[keep], c, source_up, max(prior_m, 0.5))
        if solved is None:
            return bounds.area(observations)
        x, _, _ = solved
        if len(keep) <= 3:
            break
        d = np.linalg.norm(all_pos[keep] - np.array([x[0], x[1], source_up]), axis=1)
        res = np.abs(d - (all_t[keep] - all_t[keep].min() - x[2]) * c)
        mad = float(np.median(res)) * 1.4826
        limit = max(outlier_factor * max(mad, prior_m), 3.0 * prior_m)
        worst = int(np.argmax(res))
        if res[worst] <= limit:
            break
        keep.pop(worst)
    assert solved is not None
    x, rms, jac = solved
    if vague_onsets and len(keep) < MIN_VAGUE_SENSORS:
        return bounds.area(observations)
    if len(keep) == 3 and _second_crossing(
        all_pos[keep], all_t[keep], c, source_up, max(prior_m, 0.5), x, bounds.hearing_m
    ):
        return bounds.area(observations)
    return _finish(observations, keep, all_pos, all_t, x, rms, jac, prior_m, bounds, max_distance_m)


#: Sensors a point needs when onsets are vague: one more than the unknowns (x, y, t0), so that
#: their agreement is a test and not a certainty.
MIN_VAGUE_SENSORS = 4

#: A second solution counts when it is within this many hearing ranges of every sensor that
#: heard the sound: a loud bang carries past the nominal range, but not without limit.
PLAUSIBLE_REACH = 1.5


def _crossings(
    positions: FloatArray, onsets: FloatArray, c: float, source_up: float
) -> list[FloatArray]:
    """Every horizontal position whose travel times to three sensors differ exactly as their
    onsets do. Subtracting the first sensor's range equation from the others' gives two
    equations linear in ``(x, y, r_1)`` (as in ``_linear_start``): ``(x, y) = u + v r_1``, and
    ``r_1 = |(x, y) - s_1|`` then makes a quadratic in ``r_1``, of at most two roots.
    Collinear sensors leave ``(x, y)`` undetermined across their line: none is returned."""
    a, d, b, s1 = _linearised(positions, onsets, c, source_up)
    if abs(float(np.linalg.det(a))) < 1e-6 * float(np.sum(a**2)):
        return []
    u = np.linalg.solve(a, b)
    v = np.linalg.solve(a, -2.0 * d)
    w = u - s1[:2]
    roots = np.roots([float(v @ v) - 1.0, 2.0 * float(w @ v), float(w @ w) + float(s1[2] ** 2)])
    out: list[FloatArray] = []
    for r1 in roots:
        if abs(float(np.imag(r1))) > 1e-9 or float(np.real(r1)) < 0.0:
            continue
        r = float(np.real(r1))
        if np.all(r + d >= 0.0):  # every range non-negative
            out.append(u + v * r)
    return out


def _second_crossing(
    positions: FloatArray,
    onsets: FloatArray,
    c: float,
    source_up: float,
    scale_m: float,
    x: FloatArray,
    hearing_m: float,
) -> bool:
    """Whether three sensors' onsets fit a second position as well as ``x``, one the sensors
    could have heard. Three sensors give two time differences, two hyperbolae, and these may
    cross twice: the fit lands on one crossing, and the ellipse drawn around it says nothing
    of the other (the twin fixed a firework 55 m off, on the wrong crossing, with a 19 m
    ellipse). Such a sound gets the area consistent with its onsets, not a point."""
    for other in _crossings(positions, onsets, c, source_up):
        if float(np.linalg.norm(other - x[:2])) <= max(5.0, 3.0 * scale_m):
            continue  # the crossing the fit found
        reach = np.linalg.norm(positions[:, :2] - other, axis=1)
        if float(np.max(reach)) <= PLAUSIBLE_REACH * hearing_m:
            return True
    return False


def _finish(
    observations: list[Observation],
    keep: list[int],
    all_pos: FloatArray,
    all_t: FloatArray,
    x: FloatArray,
    rms: float,
    jac: FloatArray,
    prior_m: float,
    bounds: _AreaBounds,
    max_distance_m: float,
) -> Fix:
    """The fix with its 95 % ellipse from the Jacobian at the solution ``x``, or the area
    when the fit's residuals or geometry fail: a solution far outside the sensors, residuals
    beyond the timing tolerance, an ellipse wider than a sensor's hearing range."""
    centroid = all_pos[keep, :2].mean(axis=0)
    if float(np.linalg.norm(x[:2] - centroid)) > max_distance_m:
        return bounds.area(observations)
    if rms > bounds.tolerance_s * bounds.c:
        return bounds.area(observations)
    dof = len(keep) - 3
    sigma2 = prior_m**2 if dof <= 0 else max(prior_m**2, rms**2 * len(keep) / dof)
    try:
        cov = sigma2 * np.linalg.inv(jac.T @ jac)
    except np.linalg.LinAlgError:
        return bounds.area(observations)
    pos_cov = cov[:2, :2]
    if not np.all(np.isfinite(pos_cov)):
        return bounds.area(observations)
    eigvals, eigvecs = np.linalg.eigh(0.5 * (pos_cov + pos_cov.T))
    eigvals = np.clip(eigvals, 0.0, None)
    major = math.sqrt(CHI2_2DOF_95 * float(eigvals[1]))
    minor = math.sqrt(CHI2_2DOF_95 * float(eigvals[0]))
    angle = axes_angle(float(eigvecs[0, 1]), float(eigvecs[1, 1]))
    if not math.isfinite(major) or major > min(max_distance_m, bounds.hearing_m):
        return bounds.area(observations)
    return Fix(
        east=float(x[0]),
        north=float(x[1]),
        method="tdoa",
        radius_m=major,
        ellipse_major_m=major,
        ellipse_minor_m=minor,
        ellipse_angle_deg=angle,
        residual_rms_m=rms,
        used=tuple(keep),
        t0_s=float(all_t[keep].min() + x[2]),
    )


def quick_fit(
    positions: FloatArray, onsets: FloatArray, c: float, source_up: float
) -> tuple[float, float, float, float] | None:
    """``(east, north, t0, worst residual m)`` of a closed-form + Gauss-Newton fit of ≥ 4
    onsets (``t0`` on the onsets' scale), or None: what association uses to predict when a
    further sensor should hear the same sound, without the full robust fit."""
    if len(onsets) < 4:
        return None
    ref = float(onsets.min())
    t = onsets - ref
    start = _linear_start(positions, t, c, source_up)
    if start is None:
        return None
    model = _TdoaModel(positions, t, c, source_up)
    first = positions[int(np.argmin(t)), :2]
    x0 = np.array([start[0], start[1], -float(np.linalg.norm(start - first)) / c])
    fit = _gauss_newton(model.residuals, model.jacobian, x0, iterations=10)
    if fit is None:
        return None
    worst = float(np.max(np.abs(model.residuals(fit))))
    return float(fit[0]), float(fit[1]), ref + float(fit[2]), worst


def consistent(
    positions: FloatArray, onsets: FloatArray, c: float, source_up: float, max_residual_m: float
) -> bool:
    """Whether ≥ 4 onsets can come from one source: a quick closed-form + Gauss-Newton fit
    leaves every residual within ``max_residual_m``. (Fusion uses it before letting one
    more sensor join an incident's localisation set.)"""
    if len(onsets) < 4:
        return True
    t = onsets - onsets.min()
    start = _linear_start(positions, t, c, source_up)
    if start is None:
        return True
    model = _TdoaModel(positions, t, c, source_up)
    first = positions[int(np.argmin(t)), :2]
    x0 = np.array([start[0], start[1], -float(np.linalg.norm(start - first)) / c])
    fit = _gauss_newton(model.residuals, model.jacobian, x0, iterations=10)
    return fit is not None and float(np.max(np.abs(model.residuals(fit)))) <= max_residual_m


def locate_many(
    problems: list[list[Observation]],
    speed_of_sound_m_s: float,
    onset_sigma_s: float = 0.002,
    fallback_radius_m: float = 150.0,
    source_up: float = 0.0,
    max_distance_m: float = 2000.0,
    timing_tolerance_s: float = 0.05,
    area_hearing_m: Sequence[float] | None = None,
    vague_onsets: bool = False,
) -> list[Fix]:
    """``locate`` for many sounds at once (what one ingest batch needs); ``area_hearing_m``
    gives each problem's own hearing range for its area, ``vague_onsets`` is as in
    ``locate``.

    Problems with the same number (≥ 4) of sensors are solved together: the closed-form
    start and a few Gauss-Newton steps run as stacked numpy operations. Those whose every
    residual ends at the noise level (≤ 3 σ) are done; the rest, and problems with fewer
    sensors, go through ``locate`` one by one (robust fit, outlier rejection)."""
    c = speed_of_sound_m_s
    prior_m = onset_sigma_s * c
    if area_hearing_m is not None and len(area_hearing_m) != len(problems):
        raise ValueError("area_hearing_m needs one range per problem")
    reach: list[float | None] = (
        [None] * len(problems) if area_hearing_m is None else list(area_hearing_m)
    )
    out: list[Fix | None] = [None] * len(problems)
    by_n: dict[int, list[int]] = {}
    for index, problem in enumerate(problems):
        if len(problem) >= 4:
            by_n.setdefault(len(problem), []).append(index)
    for n, indices in by_n.items():
        pos = np.array(
            [[[o.east, o.north, o.up] for o in problems[i]] for i in indices], dtype=np.float64
        )
        t = np.array([[o.onset_s for o in problems[i]] for i in indices], dtype=np.float64)
        t = t - t.min(axis=1, keepdims=True)
        shifted = pos - np.array([0.0, 0.0, source_up])
        ref = np.argmin(t, axis=1)
        rows = np.arange(len(indices))
        s1 = shifted[rows, ref]  # [m, 3]
        d = (t - t[rows, ref][:, None]) * c  # [m, n], 0 at the reference
        a = np.concatenate(
            [2.0 * (shifted[:, :, :2] - s1[:, None, :2]), 2.0 * d[:, :, None]], axis=2
        )  # [m, n, 3]; the reference row is all zeros and drops out of the normal equations
        b = np.sum(shifted**2, axis=2) - np.sum(s1**2, axis=1)[:, None] - d**2
        ata = np.einsum("mni,mnj->mij", a, a) + 1e-9 * np.eye(3)
        atb = np.einsum("mni,mn->mi", a, b)
        try:
            lin = np.linalg.solve(ata, atb[..., None])[..., 0]
        except np.linalg.LinAlgError:
            continue
        v = np.empty((len(indices), 3))
        v[:, :2] = lin[:, :2]
        first = pos[rows, ref, :2]
        v[:, 2] = -np.linalg.norm(lin[:, :2] - first, axis=1) / c
        model = _TdoaModel(pos, t, c, source_up)
        for _ in range(8):
            r = model.residuals(v)
            jac = model.jacobian(v)
            jtj = np.einsum("mni,mnj->mij", jac, jac) + 1e-9 * np.eye(3)
            jtr = np.einsum("mni,mn->mi", jac, r)
            try:
                v = v - np.linalg.solve(jtj, jtr[..., None])[..., 0]
            except np.linalg.LinAlgError:
                break
        r = model.residuals(v)
        jac = model.jacobian(v)
        centroid = pos[:, :, :2].mean(axis=1)
        spread = np.max(np.linalg.norm(pos[:, :, :2] - centroid[:, None, :], axis=2), axis=1)
        near = np.linalg.norm(v[:, :2] - centroid, axis=1) <= np.maximum(2.0 * spread, 50.0)
        good = np.all(np.isfinite(r), axis=1) & (np.max(np.abs(r), axis=1) <= 3.0 * prior_m) & near
        for k, index in enumerate(indices):
            if not good[k]:
                continue
            observations = problems[index]
            all_t = np.array([o.onset_s for o in observations], dtype=np.float64)
            # _finish expects t0 relative to the earliest onset, as _solve returns it
            bounds = _AreaBounds(
                c, fallback_radius_m, timing_tolerance_s, source_up, reach[index], not vague_onsets
            )
            out[index] = _finish(
                observations,
                list(range(n)),
                pos[k],
                all_t,
                v[k],
                float(np.sqrt(np.mean(r[k] ** 2))),
                jac[k],
                prior_m,
                bounds,
                max_distance_m,
            )
    return [
        fix
        if fix is not None
        else locate(
            problems[i],
            c,
            onset_sigma_s=onset_sigma_s,
            fallback_radius_m=fallback_radius_m,
            source_up=source_up,
            max_distance_m=max_distance_m,
            timing_tolerance_s=timing_tolerance_s,
            area_hearing_m=reach[i],
            vague_onsets=vague_onsets,
        )
        for i, fix in enumerate(out)
    ]
