from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ouie.sim.scenario import TruthEvent
from ouie.sim.scorecard import ObservedDetection, ObservedIncident, aggregate, score

ORIGIN = datetime(2026, 5, 1, 22, 0, tzinfo=UTC)


def truth(index: int, label: str, onset: float, lat: float = 45.44) -> TruthEvent:
    return TruthEvent(
        index=index,
        label=label,
        is_target=label != "crowd",
        source="synthetic:x",
        synthetic=True,
        x=0.0,
        y=0.0,
        z=1.5,
        lat=lat,
        lon=4.387,
        onset_s=onset,
        duration_s=1.0,
        level_db_spl=120.0,
        nearest_sensor="a",
        nearest_onset_s=onset + 0.05,
        sensors_in_range=4,
        note="",
        arrivals={"a": onset + 0.05, "b": onset + 0.1},
    )


def detection(sensor: str, label: str, at: float, mid: str) -> ObservedDetection:
    return ObservedDetection(sensor, label, ORIGIN + timedelta(seconds=at), mid)


def incident(
    iid: str, label: str, dets: list[ObservedDetection], lat: float, seen: float
) -> ObservedIncident:
    return ObservedIncident(
        iid, label, lat, 4.387, "tdoa", 3.0, min(d.onset for d in dets), dets, visible_s=seen
    )


def test_scorecard_counts_errors_and_latency() -> None:
    events = [
        truth(0, "gunshot", 10.0),
        truth(1, "gunshot", 20.0),
        truth(2, "siren", 30.0),
        truth(3, "crowd", 40.0),
    ]
    offsets = {"a": 0.001, "b": -0.002}
    incidents = [
        # shot 0, located 11 m north, visible 0.6 s after the true onset at the nearest sensor
        incident(
            "i1",
            "gunshot",
            [detection("a", "gunshot", 10.051, "m1"), detection("b", "gunshot", 10.098, "m2")],
            45.4401,
            10.65,
        ),
        # the same shot again: a duplicate, not a false alarm
        incident("i2", "gunshot", [detection("b", "gunshot", 10.2, "m3")], 45.44, 11.0),
        # a shot heard as an explosion: a false alarm, mislabelled
        incident("i3", "explosion", [detection("a", "explosion", 20.06, "m4")], 45.44, 20.5),
        # nothing happened then
        incident("i4", "scream", [detection("a", "scream", 50.0, "m5")], 45.44, 50.5),
    ]
    card = score(events, incidents, ORIGIN, offsets, sensors=2, duration_s=60.0)
    assert (card["events"], card["detected"], card["missed"]) == (3, 1, 2)
    assert card["false_alarms"] == 2 and card["mislabelled"] == 1
    assert card["duplicate_incidents"] == 1
    assert card["localisation_error_m"]["median"] == pytest.approx(11.1, abs=0.1)
    assert card["latency_s"]["p50"] == pytest.approx(0.6)
    assert card["per_class"]["gunshot"] == {
        "events": 2,
        "detected": 1,
        "missed": 1,
        "incidents": 2,
        "false_alarms": 0,
    }
    assert card["per_class"]["siren"]["missed"] == 1
    assert "crowd" not in card["per_class"]
    verdicts = [row["verdict"] for row in card["incident_list"]]
    assert verdicts == ["true", "duplicate", "wrong_label", "false_alarm"]
    assert card["detections"] == {"total": 5, "matched": 3}

    card.update({"node_cpu": {"total_cpu_s": 1.2}, "wall_s": 3.0})
    combined = aggregate([card, card])
    assert combined["detected"] == 2 and combined["false_alarms"] == 4
    assert combined["localisation_error_m"]["n"] == 2
    assert combined["per_class"]["gunshot"]["events"] == 4
    assert combined["node_cpu"]["percent_of_core_mean"] == pytest.approx(1.0)  # 2.4 s / 240 s


def test_clock_offsets_are_taken_into_account() -> None:
    events = [truth(0, "gunshot", 10.0)]
    # Sensor a's clock runs 0.3 s behind: its onset reads before the sound could arrive.
    early = incident("i1", "gunshot", [detection("a", "gunshot", 10.05 - 0.3, "m1")], 45.44, 11)
    assert score(events, [early], ORIGIN, {}, sensors=1, duration_s=20)["detected"] == 0
    assert score(events, [early], ORIGIN, {"a": -0.3}, sensors=1, duration_s=20)["detected"] == 1
