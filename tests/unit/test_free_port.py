"""The ports tests start servers and SIP phones on (tests/conftest.py ``free_port``)."""

from __future__ import annotations

import socket

from tests.conftest import ephemeral_ports, free_port, worker_ports


def test_a_free_port_is_outside_the_range_a_socket_bound_to_port_0_can_be_given() -> None:
    # Seen in a full run: a sipp phone's port, found free and released, was taken by another socket
    # before the phone opened it; its call never rang. No bind to port 0 can reach these ports.
    ports = {free_port() for _ in range(50)}
    assert len(ports) == 50
    assert not ports & set(ephemeral_ports())
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, socket.socket() as tcp:
            udp.bind(("127.0.0.1", port))
            tcp.bind(("127.0.0.1", port))


def test_each_worker_has_its_own_share_of_ports() -> None:
    shares = [worker_ports(f"gw{i}", "3") for i in range(3)]
    assert all(len(share) >= 1000 for share in shares)
    assert not set(shares[0]) & set(shares[1]) and not set(shares[1]) & set(shares[2])
    assert max(shares[2]) < ephemeral_ports().start
    assert worker_ports(None, None) == worker_ports("gw0", "1")
