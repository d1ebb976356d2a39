"""ouie's event vocabulary: the eight classes a sensor may ever report.

Nothing outside this list can leave a node. In particular there is no speech label:
speech is something the node suppresses, never something it reports.
"""

from __future__ import annotations

from enum import StrEnum


class EventLabel(StrEnum):
    GUNSHOT = "gunshot"
    GLASS_BREAKING = "glass_breaking"
    SCREAM = "scream"
    EXPLOSION = "explosion"
    VEHICLE_CRASH = "vehicle_crash"
    SIREN = "siren"
    CAR_ALARM = "car_alarm"
    SPRAY_CAN = "spray_can"


#: Output column order of every classifier backend (``Classifier.scores``).
EVENT_LABELS: tuple[EventLabel, ...] = tuple(EventLabel)

#: Short, loud classes that may still be reported when speech is present, above a strict
#: threshold: a shot during a conversation must not be hidden by the speech guard.
IMPULSIVE_LABELS: frozenset[EventLabel] = frozenset(
    {
        EventLabel.GUNSHOT,
        EventLabel.EXPLOSION,
        EventLabel.GLASS_BREAKING,
        EventLabel.VEHICLE_CRASH,
    }
)


def is_target(label: str) -> bool:
    """True when ``label`` (any dataset label) is one of ouie's event classes."""
    return label in EventLabel._value2member_map_


def label_index(label: EventLabel) -> int:
    return EVENT_LABELS.index(label)
