from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ouie.sim.scenario import TruthEvent
from ouie.sim.scorecard import (
    ObservedDetection,
    ObservedIncident,
    ObservedShot,
    aggregate,
    score,
)
from ouie.sim.sources import classifier_line

ORIGIN = datetime(2026, 5, 1, 22, 0, tzinfo=UTC)


def truth(index: int, label: str, onset: float, group: int = -1) -> TruthEvent:
    return TruthEvent(
        index=index,
        label=label,
        is_target=label != "crowd",
        source="synthetic:x",
        synthetic=True,
        x=0.0,
        y=0.0,
        z=1.5,
        lat=45.44,
        lon=4.387,
        onset_s=onset,
        duration_s=1.0,
        level_db_spl=120.0,
        nearest_sensor="a",
        nearest_onset_s=onset + 0.05,
        sensors_in_range=4,
        note="",
        arrivals={"a": onset + 0.05, "b": onset + 0.1},
        group=group,
    )


def detection(sensor: str, label: str, at: float, mid: str, shot: int = 1) -> ObservedDetection:
    return ObservedDetection(sensor, label, ORIGIN + timedelta(seconds=at), mid, "tdoa", shot)


def shot(number: int, lat: float, method: str = "tdoa", radius: float = 3.0) -> ObservedShot:
    return ObservedShot(number, lat, 4.387, method, radius, 2)


def incident(
    iid: str,
    label: str,
    dets: list[ObservedDetection],
    seen: float,
    shots: list[ObservedShot] | None = None,
) -> ObservedIncident:
    shots = shots or [shot(1, 45.44)]
    first = shots[0]
    return ObservedIncident(
        iid,
        label,
        first.lat,
        first.lon,
        first.method,
        first.radius_m,
        min(d.onset for d in dets),
        dets,
        visible_s=seen,
        shots=shots,
    )


def test_scorecard_scores_every_shot() -> None:
    events = [
        truth(0, "gunshot", 10.0, group=0),
        truth(1, "gunshot", 20.0, group=0),
        truth(2, "siren", 30.0),
        truth(3, "crowd", 40.0),
    ]
    offsets = {"a": 0.001, "b": -0.002}
    incidents = [
        # two rounds: the first located 11 m north, the second only an area that holds it
        incident(
            "i1",
            "gunshot",
            [
                detection("a", "gunshot", 10.051, "m1"),
                detection("b", "glass_breaking", 10.098, "m2"),  # another label, same shot
                detection("a", "gunshot", 20.05, "m3", shot=2),
            ],
            10.65,
            [shot(1, 45.4401), shot(2, 45.4402, "area", 50.0)],
        ),
        # the first round again: a duplicate incident, its fix a split of an already located shot
        incident("i2", "gunshot", [detection("b", "gunshot", 10.2, "m4")], 11.0),
        # the second round called an explosion: mislabelled, not a false alarm; located
        incident("i3", "explosion", [detection("b", "explosion", 20.1, "m5")], 20.5),
        # nothing happened then
        incident("i4", "scream", [detection("a", "scream", 50.0, "m6")], 50.5),
        # the crowd heard as a gunshot: a false alarm caused by a real, non-target sound
        incident("i5", "gunshot", [detection("a", "gunshot", 40.06, "m7")], 40.5),
    ]
    card = score(events, incidents, ORIGIN, offsets, sensors=2, duration_s=60.0)
    assert (card["events"], card["detected"], card["missed"]) == (3, 2, 1)
    assert (card["false_alarms"], card["mislabelled"], card["duplicate_incidents"]) == (2, 1, 1)
    loc = card["localisation_error_m"]
    assert loc["n"] == 2  # located shots: round 1 (i1) and round 2 (i3)
    assert loc["max"] == pytest.approx(11.1, abs=0.1)
    assert (loc["area_n"], loc["area_covered"]) == (1, 1)
    assert card["rounds"] == {"truth": 3, "reported": 6, "matched": 2, "located": 2}
    assert card["latency_s"]["p50"] == pytest.approx(0.6)
    assert card["per_class"]["gunshot"] == {
        "events": 2,
        "detected": 2,
        "missed": 0,
        "incidents": 3,
        "false_alarms": 1,
        "mislabelled": 0,
    }
    assert card["per_class"]["explosion"]["mislabelled"] == 1
    assert card["per_class"]["siren"]["missed"] == 1
    assert "crowd" not in card["per_class"]
    rows = {row["id"]: row for row in card["incident_list"]}
    assert [rows[i]["verdict"] for i in ("i1", "i2", "i3", "i4", "i5")] == [
        "true",
        "duplicate",
        "wrong_label",
        "false_alarm",
        "false_alarm",
    ]
    assert (rows["i1"]["rounds"], rows["i1"]["rounds_matched"], rows["i1"]["truth_rounds"]) == (
        2,
        2,
        2,
    )
    assert rows["i5"]["truth_label"] == "crowd"
    verdicts = [(r["incident_id"], r["number"], r["verdict"]) for r in card["shot_list"]]
    assert verdicts == [
        ("i1", 1, "located"),
        ("i1", 2, "area"),
        ("i2", 1, "split"),
        ("i3", 1, "located"),
        ("i5", 1, "spurious"),
        ("i4", 1, "spurious"),
    ]
    assert [row["located"] for row in card["truth"]] == [True, True, False, False]
    assert card["detections"] == {"total": 7, "matched": 6}

    card.update(
        {
            "node_cpu": {"total_cpu_s": 1.2},
            "wall_s": 3.0,
            "backend": "auto",
            "model_id": "ouie-compact@12345678",
            "sources": {
                "mode": "synthetic",
                "dataset": None,
                "real_clips": 0,
                "synthetic": 4,
                "collections": [],
                "ambience": "generated",
            },
        }
    )
    combined = aggregate([card, card])
    assert combined["detected"] == 4 and combined["false_alarms"] == 4
    # auto may be either model: the demo says which one heard the sounds
    assert classifier_line(combined) == "classifier: ouie-compact@12345678 (backend auto)"
    assert combined["mislabelled"] == 2
    assert combined["localisation_error_m"]["n"] == 4
    assert combined["rounds"]["reported"] == 12
    assert combined["per_class"]["gunshot"]["events"] == 4
    assert combined["node_cpu"]["percent_of_core_mean"] == pytest.approx(1.0)  # 2.4 s / 240 s
    assert combined["sources"]["mode"] == "synthetic" and combined["sources"]["synthetic"] == 8


def test_clock_offsets_are_taken_into_account() -> None:
    events = [truth(0, "gunshot", 10.0)]
    # Sensor a's clock runs 0.3 s behind: its onset reads before the sound could arrive.
    early = incident("i1", "gunshot", [detection("a", "gunshot", 10.05 - 0.3, "m1")], 11)
    assert score(events, [early], ORIGIN, {}, sensors=1, duration_s=20)["detected"] == 0
    assert score(events, [early], ORIGIN, {"a": -0.3}, sensors=1, duration_s=20)["detected"] == 1


def test_a_hub_without_shots_is_scored_as_one_shot_per_incident() -> None:
    events = [truth(0, "gunshot", 10.0)]
    plain = ObservedIncident(
        "i1",
        "gunshot",
        45.44,
        4.387,
        "tdoa",
        3.0,
        ORIGIN + timedelta(seconds=10.05),
        [ObservedDetection("a", "gunshot", ORIGIN + timedelta(seconds=10.05), "m1")],
    )
    card = score(events, [plain], ORIGIN, {}, sensors=1, duration_s=20)
    assert card["localisation_error_m"]["n"] == 1 and card["rounds"]["reported"] == 1
