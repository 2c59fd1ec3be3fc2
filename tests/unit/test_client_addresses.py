"""Whose address a request carries, and which bucket an address falls in."""

from __future__ import annotations

import ipaddress

from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from shared.http.clientip import client_ip, parse_networks
from shared.rules.subjects import address_key

TRUSTED = parse_networks("127.0.0.1/32,10.0.0.0/8")


def _request(peer: str, *lines: str):  # type: ignore[no-untyped-def]
    headers = CIMultiDict(("X-Forwarded-For", line) for line in lines)
    request = make_mocked_request("GET", "/", headers=headers)
    request._transport_peername = (peer, 1234)  # type: ignore[attr-defined]
    return request


def test_read_right_to_left_to_the_first_untrusted_hop() -> None:
    assert str(client_ip(_request("127.0.0.1", "203.0.113.9, 10.1.1.1"), TRUSTED)) == "203.0.113.9"
    assert str(client_ip(_request("127.0.0.1", "198.51.100.2, 203.0.113.9"), TRUSTED)) == (
        "203.0.113.9"
    )


def test_an_untrusted_peer_cannot_choose_its_address() -> None:
    assert str(client_ip(_request("192.0.2.5", "203.0.113.9"), TRUSTED)) == "192.0.2.5"


def test_a_line_the_client_sent_cannot_hide_the_proxys_own() -> None:
    # The client sends its own header; the trusted proxy appends a second line with the
    # address it saw. The last line is read first.
    request = _request("127.0.0.1", "1.2.3.4", "198.51.100.7")
    assert str(client_ip(request, TRUSTED)) == "198.51.100.7"


def test_an_ipv6_subscriber_is_one_bucket() -> None:
    one = address_key(ipaddress.ip_address("2001:db8:1:2:aaaa::1"))
    other = address_key(ipaddress.ip_address("2001:db8:1:2:bbbb::2"))
    elsewhere = address_key(ipaddress.ip_address("2001:db8:1:3::1"))
    assert one == other == "2001:db8:1:2::/64" and elsewhere != one
    assert address_key(ipaddress.ip_address("::ffff:198.51.100.7")) == "198.51.100.7"
    assert address_key(ipaddress.ip_address("198.51.100.7")) == "198.51.100.7"
