"""Where the sun is, for the drone's night rule (EU: night starts at the end of civil
twilight, sun 6° below the horizon).

``sun_elevation_deg`` is the NOAA solar-position approximation (about 0.1° between 1901
and 2099), enough to tell day, civil twilight and night apart.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime


def sun_elevation_deg(lat: float, lon: float, when: datetime) -> float:
    """Apparent solar elevation above the horizon, degrees (NOAA approximation)."""
    t = when.astimezone(UTC)
    day_of_year = t.timetuple().tm_yday
    hours = t.hour + t.minute / 60.0 + (t.second + t.microsecond / 1e6) / 3600.0
    days_in_year = 366 if (t.year % 4 == 0 and (t.year % 100 != 0 or t.year % 400 == 0)) else 365
    g = 2.0 * math.pi / days_in_year * (day_of_year - 1 + (hours - 12.0) / 24.0)
    eqtime = 229.18 * (
        0.000075
        + 0.001868 * math.cos(g)
        - 0.032077 * math.sin(g)
        - 0.014615 * math.cos(2 * g)
        - 0.040849 * math.sin(2 * g)
    )
    decl = (
        0.006918
        - 0.399912 * math.cos(g)
        + 0.070257 * math.sin(g)
        - 0.006758 * math.cos(2 * g)
        + 0.000907 * math.sin(2 * g)
        - 0.002697 * math.cos(3 * g)
        + 0.00148 * math.sin(3 * g)
    )
    true_solar_min = hours * 60.0 + eqtime + 4.0 * lon
    hour_angle = math.radians(true_solar_min / 4.0 - 180.0)
    phi = math.radians(lat)
    cos_zenith = math.sin(phi) * math.sin(decl) + math.cos(phi) * math.cos(decl) * math.cos(
        hour_angle
    )
    zenith = math.degrees(math.acos(max(-1.0, min(1.0, cos_zenith))))
    return 90.0 - zenith
