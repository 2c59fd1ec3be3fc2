"""Events: codec round trip, canonical bytes, the envelope, upcasting."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from shared.chain import GENESIS, link
from shared.events import Envelope, Event, UnknownEventType, decode_data, encode_data, event_type
from shared.events.base import upcaster
from shared.events.envelope import canonical_bytes, decode_envelope
from shared.events.issuer import CodeIssued, GroupCreated
from shared.events.personal import Sealed, legacy_person
from shared.events.redeemer import JoinRequested, ScanAccepted


def _code_issued() -> CodeIssued:
    return CodeIssued(
        code_id=uuid.uuid4(),
        group_id=uuid.uuid4(),
        key_id="00112233aabbccdd",
        payload="http://x/j/abc",
        issued_at=datetime(2026, 11, 29, 3, 0, tzinfo=UTC),
        expires_at=datetime(2026, 12, 6, 3, 0, tzinfo=UTC),
        max_scans=100,
    )


def test_data_round_trips_through_its_canonical_bytes() -> None:
    event = _code_issued()
    data = encode_data(event)
    assert decode_data("CodeIssued", 1, data) == event
    keys = list(msgspec.json.decode(data))
    assert keys == sorted(keys)


def test_events_are_immutable() -> None:
    event = GroupCreated(group_id=uuid.uuid4(), name="g", max_members=10)
    with pytest.raises(AttributeError):
        event.name = "other"  # type: ignore[misc]


def test_envelope_canonical_bytes_are_sorted_and_exact() -> None:
    envelope = Envelope(
        event_id=uuid.uuid4(),
        type="GroupCreated",
        schema=1,
        tenant_id=uuid.uuid4(),
        stream_id="group:1",
        stream_version=1,
        occurred_at=datetime(2026, 11, 29, 3, 0, 0, 123456, tzinfo=UTC),
        data=msgspec.Raw(
            encode_data(GroupCreated(group_id=uuid.uuid4(), name="书友会", max_members=5))
        ),
        log="qunma.issuer.events",
        partition=2,
        position=7,
        prev_hash=GENESIS.hex(),
    )
    body = canonical_bytes(envelope)
    as_dict: dict[str, Any] = msgspec.json.decode(body)
    assert list(as_dict) == sorted(as_dict)
    assert "hash" not in as_dict
    # Anyone can rebuild the same bytes from the decoded object.
    assert msgspec.json.encode(as_dict, order="sorted") == body
    again = decode_envelope(body)
    assert again == envelope
    assert isinstance(again.event(), GroupCreated)
    assert link(GENESIS, body) == link(GENESIS, canonical_bytes(again))


def test_unknown_type_and_newer_schema_are_refused() -> None:
    with pytest.raises(UnknownEventType):
        decode_data("NoSuchEvent", 1, b"{}")
    with pytest.raises(UnknownEventType):
        decode_data("GroupCreated", 99, b"{}")


def test_old_schema_is_upcast_not_edited() -> None:
    @event_type
    class GadgetRenamed(Event, frozen=True):
        SCHEMA = 2
        gadget_id: str
        new_name: str

    @upcaster("GadgetRenamed", 1)
    def upcast_v1_v2(old: dict[str, Any]) -> dict[str, Any]:
        return {"gadget_id": old["id"], "new_name": old["name"]}

    decoded = decode_data("GadgetRenamed", 1, b'{"id":"g1","name":"n"}')
    assert decoded == GadgetRenamed(gadget_id="g1", new_name="n")


def test_optional_fields_added_later_decode_from_old_data() -> None:
    scan = ScanAccepted(
        scan_id=uuid.uuid4(),
        code_id=uuid.uuid4(),
        group_id=uuid.uuid4(),
        person="p_1",
        user=Sealed("k1", "c1"),
        token_expires_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    old: dict[str, Any] = msgspec.json.decode(encode_data(scan))
    del old["replaces_scan_id"]
    assert decode_data("ScanAccepted", 2, msgspec.json.encode(old)) == scan


def test_a_schema_1_scan_is_lifted_with_a_pseudonym_and_its_values_in_clear() -> None:
    """Events logged before sealing existed decode as today's type; their values stay as
    they were logged (in clear, marked by an empty key id)."""
    old = {
        "scan_id": str(uuid.uuid4()),
        "code_id": None,
        "group_id": str(uuid.uuid4()),
        "user_id": "wx-alice",
        "device_id": "phone-1",
        "token_expires_at": "2026-01-01T00:00:00Z",
        "day": None,
    }
    lifted = decode_data("ScanAccepted", 1, msgspec.json.encode(old))
    assert isinstance(lifted, ScanAccepted)
    assert lifted.person == legacy_person("wx-alice")
    assert lifted.user == Sealed("", "wx-alice") and lifted.device == Sealed("", "phone-1")
    request = decode_data(
        "JoinRequested",
        1,
        msgspec.json.encode(
            {
                "request_id": str(uuid.uuid4()),
                "scan_id": str(uuid.uuid4()),
                "code_id": None,
                "group_id": str(uuid.uuid4()),
                "user_id": "wx-bob",
                "mode": "real_name",
                "real_name": "Bob",
            }
        ),
    )
    assert isinstance(request, JoinRequested) and request.real_name == Sealed("", "Bob")
