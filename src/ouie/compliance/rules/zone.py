"""Rules ``zone-missing`` and ``sensor-outside-zone``: the listening zone is declared and
every sensor stands inside it.

"Inside" is ``ouie.core.geometry.point_in_polygon`` on (lat, lon), the one test every
package uses, so a sensor on the zone's edge is in the zone everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable

from ouie.compliance.findings import Finding
from ouie.config.compliance import DeclaredSensor, Zone
from ouie.core.geometry import point_in_polygon


def zone_findings(
    zone: Zone | None, sensors: Iterable[DeclaredSensor], source: str = ""
) -> list[Finding]:
    sensors = list(sensors)
    if zone is None:
        return [
            Finding(
                "zone-missing",
                "declare the listening zone (compliance.zone.polygon, [[lat, lon], ...])",
                "compliance.zone",
                source,
            )
        ]
    found = []
    for sensor in sensors:
        if not point_in_polygon((sensor.lat, sensor.lon), zone.polygon):
            found.append(
                Finding(
                    "sensor-outside-zone",
                    f"sensor {sensor.id} at ({sensor.lat:.6f}, {sensor.lon:.6f}) is outside "
                    f"the declared zone {zone.name!r}",
                    f"sensors.{sensor.id}",
                    source,
                )
            )
    return found
