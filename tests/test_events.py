"""events: the envelope contract, the data of the standard types, and the messages that name the culprit."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from recovery.events import SCOPE_TYPES, STANDARD_TYPES, Event, Occurrence, _describe, data_fields
from recovery.exceptions import EventError
from recovery.times import format_time

MISSING = object()
TYPE_PATTERN = r"'^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)+$'"

RawFactory = Callable[..., str]


@pytest.fixture(scope="session")
def raw_factory() -> RawFactory:
    """`raw_factory(type="survey.response", data={"score": 3}, customer_id=MISSING)`: one event as JSON text."""

    def make(**fields: Any) -> str:
        raw: dict[str, Any] = {
            "id": "e1",
            "type": "service.call",
            "occurred_at": "2026-11-02T09:00:00Z",
            "customer_id": "C1",
            "data": {},
        }
        for key, value in fields.items():
            if value is MISSING:
                raw.pop(key, None)
            else:
                raw[key] = value
        return json.dumps(raw)

    return make


class TestValid:
    @pytest.mark.parametrize(
        ("fields", "data"),
        [
            ({}, {}),
            ({"data": MISSING}, {}),
            ({"data": {"reason": "router"}}, {"reason": "router"}),
            ({"data": {"reason": None, "extra": [1]}}, {"reason": None, "extra": [1]}),
            ({"type": "survey.response", "data": {"score": 0}}, {"score": 0}),
            ({"type": "survey.response", "data": {"score": 10}}, {"score": 10}),
            ({"type": "complaint.opened", "data": {"complaint_id": "K1"}}, {"complaint_id": "K1"}),
            ({"type": "payment.failed"}, {}),
            ({"type": "cancellation.requested", "data": {"note": "x"}}, {"note": "x"}),
            ({"type": "task.completed", "data": {"outcome": "done"}}, {"outcome": "done"}),
            ({"type": "customer.updated", "data": {"segment": "smb"}}, {"segment": "smb", "tier": "standard"}),
            ({"type": "customer.updated", "data": {"tier": "gold"}}, {"tier": "gold"}),
            (
                {"type": "outage.started", "customer_id": MISSING, "data": {"outage_id": "O1", "customer_ids": ["C1"]}},
                {"outage_id": "O1", "customer_ids": ["C1"]},
            ),
            (
                {"type": "outage.started", "customer_id": MISSING, "data": {"outage_id": "O1", "region": "north"}},
                {"outage_id": "O1", "region": "north"},
            ),
            ({"type": "outage.started", "data": {"outage_id": "O1"}}, {"outage_id": "O1"}),
            ({"type": "outage.resolved", "customer_id": MISSING, "data": {"outage_id": "O1"}}, {"outage_id": "O1"}),
            # an unknown type is valid and keeps its data as given
            ({"type": "x.y", "data": {"anything": [1, {"a": None}]}}, {"anything": [1, {"a": None}]}),
            ({"type": "billing.invoice-sent_v2", "data": {"n": 1.5}}, {"n": 1.5}),
        ],
    )
    def test_data(self, fields: dict[str, Any], data: dict[str, Any], raw_factory: RawFactory) -> None:
        event = Event.from_json(raw_factory(**fields))
        assert event.data == data

    def test_envelope(self, raw_factory: RawFactory) -> None:
        event = Event.from_json(raw_factory(occurred_at="2026-11-02T10:00:00.5+01:00").encode())
        assert (event.id, event.type, event.customer_id) == ("e1", "service.call", "C1")
        assert event.ts == 1793610000.5
        assert event.to_json_dict() == {
            "id": "e1",
            "type": "service.call",
            "occurred_at": "2026-11-02T09:00:00.500Z",
            "customer_id": "C1",
            "data": {},
        }

    def test_scope_event_has_no_customer(self, raw_factory: RawFactory) -> None:
        raw = raw_factory(type="outage.started", customer_id=MISSING, data={"outage_id": "O1", "region": "north"})
        event = Event.from_json(raw)
        assert event.customer_id is None
        assert "customer_id" not in event.to_json_dict()

    def test_from_dict_applies_the_same_rules(self, raw_factory: RawFactory) -> None:
        raw = json.loads(raw_factory(type="customer.updated", data={}))
        assert Event.from_dict(raw).data == {"tier": "standard"}
        with pytest.raises(EventError, match=r"^event 'e1' \(survey\.response\): data\.score: Field required$"):
            Event.from_dict({**raw, "type": "survey.response"})

    def test_events_are_frozen(self, raw_factory: RawFactory) -> None:
        event = Event.from_json(raw_factory())
        with pytest.raises(ValueError, match="frozen"):
            event.id = "other"  # type: ignore[misc]

    @given(
        event_id=st.text(min_size=1, max_size=200),
        customer_id=st.text(min_size=1, max_size=200),
        ms=st.integers(min_value=0, max_value=4_000_000_000_000),
        reason=st.one_of(st.none(), st.text(max_size=20)),
    )
    def test_to_json_round_trip(self, event_id: str, customer_id: str, ms: int, reason: str | None) -> None:
        raw = {
            "id": event_id,
            "type": "service.call",
            "occurred_at": format_time(ms / 1000),
            "customer_id": customer_id,
            "data": {"reason": reason},
        }
        event = Event.from_json(json.dumps(raw))
        assert event.to_json_dict() == raw
        assert Event.from_json(json.dumps(event.to_json_dict())) == event


class TestInvalid:
    @pytest.mark.parametrize(
        ("fields", "message"),
        [
            ({"id": MISSING}, "id: Field required"),
            ({"type": MISSING}, "type: Field required"),
            ({"occurred_at": MISSING}, "occurred_at: Field required"),
            ({"id": ""}, "id: String should have at least 1 character (got '')"),
            ({"id": "x" * 201}, "id: String should have at most 200 characters (got 'xxxxxxxx"),
            ({"id": None}, "id: Input should be a valid string (got None)"),
            ({"type": "Service Call"}, f"type: String should match pattern {TYPE_PATTERN} (got 'Service Call')"),
            ({"type": "service"}, f"type: String should match pattern {TYPE_PATTERN} (got 'service')"),
            ({"type": "service.Call"}, f"type: String should match pattern {TYPE_PATTERN} (got 'service.Call')"),
            ({"type": "1x.y"}, f"type: String should match pattern {TYPE_PATTERN} (got '1x.y')"),
            ({"type": 5}, "type: Input should be a valid string (got 5)"),
            ({"occurred_at": "2026-11-02T09:00:00"}, "occurred_at: Input should have timezone info"),
            ({"occurred_at": "yesterday"}, "occurred_at: Input should be a valid datetime"),
            ({"customer_id": ""}, "customer_id: String should have at least 1 character (got '')"),
            ({"extra": 1}, "extra: Extra inputs are not permitted (got 1)"),
            ({"data": [1]}, "data: Input should be an object (got [1])"),
        ],
    )
    def test_envelope(self, fields: dict[str, Any], message: str, raw_factory: RawFactory) -> None:
        with pytest.raises(EventError) as info:
            Event.from_json(raw_factory(**fields))
        assert str(info.value).startswith(message)

    def test_every_problem_is_listed(self, raw_factory: RawFactory) -> None:
        with pytest.raises(EventError) as info:
            Event.from_json(raw_factory(id=MISSING, type=MISSING))
        assert str(info.value) == "id: Field required; type: Field required"

    @pytest.mark.parametrize(
        ("raw", "message"),
        [
            ("{not json", "event: Invalid JSON: key must be a string at line 1 column 2 (got '{not json')"),
            ("", "event: Invalid JSON: EOF while parsing a value at line 1 column 0 (got '')"),
            ("[1]", "event: Input should be an object (got [1])"),
        ],
    )
    def test_not_an_object(self, raw: str, message: str) -> None:
        with pytest.raises(EventError) as info:
            Event.from_json(raw)
        assert str(info.value) == message

    @pytest.mark.parametrize(
        ("event_type", "data", "message"),
        [
            ("survey.response", {"score": 11}, "data.score: Input should be less than or equal to 10 (got 11)"),
            ("survey.response", {"score": -1}, "data.score: Input should be greater than or equal to 0 (got -1)"),
            ("survey.response", {}, "data.score: Field required"),
            ("survey.response", {"score": "high"}, "data.score: Input should be a valid integer"),
            ("survey.response", {"score": 7.5}, "data.score: Input should be a valid integer (got 7.5)"),
            ("service.call", {"reason": 5}, "data.reason: Input should be a valid string (got 5)"),
            (
                "customer.updated",
                {"tier": "bronze"},
                "data.tier: Input should be 'standard', 'silver', 'gold' or 'platinum' (got 'bronze')",
            ),
            ("customer.updated", {"annual_value": -5}, "data.annual_value: Input should be greater than or equal to 0"),
            ("complaint.opened", {}, "data.complaint_id: Field required"),
            ("complaint.resolved", {"complaint_id": ""}, "data.complaint_id: String should have at least 1 character"),
            ("outage.started", {"region": "north"}, "data.outage_id: Field required"),
        ],
    )
    def test_standard_data(self, event_type: str, data: dict[str, Any], message: str, raw_factory: RawFactory) -> None:
        with pytest.raises(EventError) as info:
            Event.from_json(raw_factory(type=event_type, data=data))
        assert str(info.value).startswith(f"event 'e1' ({event_type}): {message}")

    @pytest.mark.parametrize(
        ("fields", "message"),
        [
            ({"customer_id": MISSING}, "event 'e1' (service.call): customer_id is required for this type"),
            ({"customer_id": None}, "event 'e1' (service.call): customer_id is required for this type"),
            ({"type": "x.y", "customer_id": MISSING}, "event 'e1' (x.y): customer_id is required for this type"),
            (
                {"type": "outage.started", "customer_id": MISSING, "data": {"outage_id": "O1"}},
                "event 'e1' (outage.started): an outage without customer_id must name the affected customers "
                "in data.customer_ids or data.region",
            ),
            (
                {"type": "outage.started", "customer_id": MISSING, "data": {"outage_id": "O1", "customer_ids": []}},
                "event 'e1' (outage.started): an outage without customer_id must name the affected customers "
                "in data.customer_ids or data.region",
            ),
            (
                {"type": "outage.started", "customer_id": MISSING, "data": {"outage_id": "O1", "region": ""}},
                "event 'e1' (outage.started): an outage without customer_id must name the affected customers "
                "in data.customer_ids or data.region",
            ),
        ],
    )
    def test_customer_rules(self, fields: dict[str, Any], message: str, raw_factory: RawFactory) -> None:
        with pytest.raises(EventError) as info:
            Event.from_json(raw_factory(**fields))
        assert str(info.value) == message

    @pytest.mark.parametrize(
        ("event_type", "data", "where"),
        [
            ("survey.response", '{"score": NaN}', "score"),
            ("x.y", '{"minutes": Infinity}', "minutes"),
            ("x.y", '{"minutes": -Infinity}', "minutes"),
            ("x.y", '{"minutes": 1e999}', "minutes"),
            ("x.y", '{"minutes": -1e999}', "minutes"),
            ("customer.updated", '{"tier": "gold", "annual_value": Infinity}', "annual_value"),
            ("x.y", '{"ok": 1, "a": {"b": [1, 2, NaN]}}', "a.b.2"),
            ("x.y", '{"a": [{"b": 1}, {"c": {"d": 1e400}}]}', "a.1.c.d"),
            ("x.y", '{"n": 1' + "0" * 400 + "}", "n"),  # no 64-bit float holds it
        ],
    )
    def test_numbers_that_are_not_finite(self, event_type: str, data: str, where: str, raw_factory: RawFactory) -> None:
        raw = raw_factory(type=event_type).replace('"data": {}', f'"data": {data}')
        with pytest.raises(EventError) as info:
            Event.from_json(raw)
        assert str(info.value) == f"event 'e1' ({event_type}): data.{where}: not a finite number"
        with pytest.raises(EventError) as info:
            Event.from_dict(json.loads(raw))
        assert str(info.value) == f"event 'e1' ({event_type}): data.{where}: not a finite number"

    def test_large_finite_numbers_are_data(self, raw_factory: RawFactory) -> None:
        data = {"a": 1.7976931348623157e308, "b": -(10**308), "c": [-0.0, 5e-324], "d": {"e": 2**63}}
        assert Event.from_json(raw_factory(type="x.y", data=data)).data == data

    def test_deep_data_is_checked_without_recursion(self, raw_factory: RawFactory) -> None:
        deep: list[Any] = [float("nan")]
        for _ in range(5000):
            deep = [deep]
        with pytest.raises(EventError, match=r"data\.a(\.0)+: not a finite number$"):
            Event.from_dict({**json.loads(raw_factory(type="x.y")), "data": {"a": deep}})

    @pytest.mark.parametrize(
        ("occurred_at", "bound"),
        [
            ("0001-01-01T00:59:59+01:00", "greater than or equal to 0001-01-01T00:00:00Z"),
            ("9999-12-31T23:59:59-00:01", "less than or equal to 9999-12-31T23:59:59.999999Z"),
            ("9999-12-31T20:00:00-05:00", "less than or equal to 9999-12-31T23:59:59.999999Z"),
        ],
    )
    def test_a_time_outside_the_years_utc_writes(self, occurred_at: str, bound: str, raw_factory: RawFactory) -> None:
        with pytest.raises(EventError) as info:
            Event.from_json(raw_factory(occurred_at=occurred_at))
        assert str(info.value) == f"occurred_at: Input should be {bound} (got '{occurred_at}')"

    @pytest.mark.parametrize(
        ("occurred_at", "shown"),
        [
            ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z"),
            ("0001-01-01T01:00:00+01:00", "0001-01-01T00:00:00Z"),
            ("9999-12-31T23:59:59.500Z", "9999-12-31T23:59:59.500Z"),
            ("9999-12-31T23:59:59+00:00", "9999-12-31T23:59:59Z"),
        ],
    )
    def test_the_first_and_last_times(self, occurred_at: str, shown: str, raw_factory: RawFactory) -> None:
        assert Event.from_json(raw_factory(occurred_at=occurred_at)).to_json_dict()["occurred_at"] == shown

    def test_long_input_is_shortened(self, raw_factory: RawFactory) -> None:
        with pytest.raises(EventError) as info:
            Event.from_json(raw_factory(data={"reason": ["x" * 500]}))
        shown = repr(["x" * 500])[:57]
        assert (
            str(info.value)
            == f"event 'e1' (service.call): data.reason: Input should be a valid string (got {shown}...)"
        )
        assert len(shown) == 57

    @pytest.mark.parametrize(
        ("event_type", "data", "key"),
        [
            ("survey.response", {"score": "7"}, "score"),
            ("survey.response", {"score": True}, "score"),
            ("customer.updated", {"annual_value": "1000"}, "annual_value"),
        ],
    )
    def test_numbers_stay_numbers(
        self, event_type: str, data: dict[str, Any], key: str, raw_factory: RawFactory
    ) -> None:
        # playbooks type these fields as numbers: an accepted event must carry a number (or be refused)
        try:
            event = Event.from_json(raw_factory(type=event_type, data=data))
        except EventError:
            return
        value = event.data[key]
        assert isinstance(value, int | float) and not isinstance(value, bool), event.data


class TestStandardTypes:
    @pytest.mark.parametrize(
        ("event_type", "fields"),
        [
            ("survey.response", {"score"}),
            ("service.call", {"reason"}),
            ("outage.started", {"outage_id", "customer_ids", "region"}),
            ("payment.failed", set()),
            ("cancellation.requested", set()),
            ("x.y", None),
        ],
    )
    def test_data_fields(self, event_type: str, fields: set[str] | None) -> None:
        assert data_fields(event_type) == (None if fields is None else frozenset(fields))

    def test_every_standard_type_is_a_valid_type_name(self, raw_factory: RawFactory) -> None:
        needs = {
            "outage.started": {"outage_id": "O1"},
            "outage.resolved": {"outage_id": "O1"},
            "complaint.opened": {"complaint_id": "K1"},
            "complaint.resolved": {"complaint_id": "K1"},
            "survey.response": {"score": 5},
            "customer.referred": {"referred_customer_id": "C2"},
            "playbook.snoozed": {"playbook": "p", "until": "2026-12-01T00:00:00Z"},
        }
        for event_type in STANDARD_TYPES:
            assert Event.from_json(raw_factory(type=event_type, data=needs.get(event_type, {}))).type == event_type

    _values = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-3, 12),
        st.floats(-5, 2000, allow_nan=False),
        st.sampled_from(["", "gold", "x", "7"]),
        st.lists(st.sampled_from(["C1", "", 3]), max_size=2),
    )

    @given(
        st.sampled_from(sorted(STANDARD_TYPES)),
        st.dictionaries(
            st.sampled_from(["tier", "annual_value", "outage_id", "customer_ids", "score", "complaint_id", "reason"]),
            _values,
        ),
    )
    def test_data_is_checked_exactly_as_its_model_would(self, event_type: str, data: dict[str, Any]) -> None:
        """The data check (a TypedDict of the model's fields, no model built) accepts and refuses what the
        model does, with the same messages."""
        try:
            STANDARD_TYPES[event_type].model_validate(data)
            expected = None
        except ValidationError as exc:
            expected = f"event 'e1' ({event_type}): {_describe(exc, prefix='data.')}"
        raw = json.dumps({"id": "e1", "type": event_type, "occurred_at": "2026-01-01T00:00:00Z", "data": data})
        if event_type not in SCOPE_TYPES:
            raw = raw.replace('"data"', '"customer_id": "C1", "data"')
        try:
            Event.from_json(raw)
            found = None
        except EventError as exc:
            found = str(exc)
        if expected is None and found is not None:
            assert "must name the affected customers" in found  # an outage without customers: envelope rule
        else:
            assert found == expected


def test_occurrence() -> None:
    occ = Occurrence("e1", "service.call", 12.5, "C1", {"reason": "router"})
    assert (occ.id, occ.type, occ.ts, occ.customer_id, occ.data) == (
        "e1",
        "service.call",
        12.5,
        "C1",
        {"reason": "router"},
    )
    assert repr(occ) == "Occurrence('e1', 'service.call', 12.5, 'C1')"
