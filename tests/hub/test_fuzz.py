"""Hypothesis-generated malformed payloads never crash ingest; each lands in dead letters."""

from __future__ import annotations

import json
import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from ouie.core.messages import topic_for
from ouie.core.timebase import utc_now
from ouie.hub.db import DeadLetter, Detection
from ouie.hub.ingest import Envelope
from ouie.hub.service import Hub
from tests.hub.helpers import SITE, events_for_source, register_sensors, sensor_grid

EXAMPLES = int(os.environ.get("OUIE_FUZZ_EXAMPLES", "300"))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


def _valid_event() -> dict[str, Any]:
    layout = sensor_grid(4)
    return json.loads(events_for_source(layout, 0.0, 0.0, utc_now())[0].model_dump_json())


def _mutations() -> st.SearchStrategy[bytes]:
    base = _valid_event()
    keys = sorted(base)
    mutate_field = st.builds(
        lambda key, value: json.dumps({**base, key: value}, default=str).encode(),
        st.sampled_from(keys),
        json_values,
    )
    drop_field = st.builds(
        lambda key: json.dumps({k: v for k, v in base.items() if k != key}).encode(),
        st.sampled_from(keys),
    )
    extra_field = st.builds(
        lambda key, value: json.dumps({**base, key: value}, default=str).encode(),
        st.text(min_size=1, max_size=10).filter(lambda k: k not in base),
        json_values,
    )
    garbage = st.binary(max_size=300)
    any_json = st.builds(lambda v: json.dumps(v, default=str).encode(), json_values)
    return st.one_of(mutate_field, drop_field, extra_field, garbage, any_json)


def test_malformed_payloads_never_crash(hub: Hub) -> None:
    register_sensors(hub, sensor_grid(4))
    crashes: list[BaseException] = []
    seen = {"n": 0}

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        payload=_mutations(),
        topic=st.sampled_from([topic_for(SITE, "s1", "events"), "ouie/v1/x", ""]),
    )
    def run(payload: bytes, topic: str) -> None:
        seen["n"] += 1
        try:
            result = hub.processor.process([Envelope("mqtt", topic, payload)])
        except BaseException as exc:
            crashes.append(exc)
            return
        assert len(result.outcomes) == 1
        assert result.outcomes[0] in {"accepted", "duplicate"} or result.outcomes[0].startswith(
            "rejected:"
        )

    run()
    assert crashes == []
    with hub.sessions() as session:
        dead = session.execute(select(func.count()).select_from(DeadLetter)).scalar_one()
        stored = session.execute(select(func.count()).select_from(Detection)).scalar_one()
    assert dead + stored >= 1 and dead >= seen["n"] // 2
