"""The endpoint keeps connections that arrive faster than it accepts them (listen backlog).

Thousands of clients (`.sync` waits, Lambda workers, job processes) connected to the local cloud
while its accept loop waited for the GIL; with werkzeug's backlog of 128 Linux dropped the rest
and clients were reset. An AWS endpoint does not drop a connection for load.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from sluice.local.endpoint import LocalEndpoint

CLIENTS = 400  # well above werkzeug's 128, well below net.core.somaxconn's usual 4096


def _somaxconn() -> int:
    try:
        with open("/proc/sys/net/core/somaxconn") as handle:
            return int(handle.read())
    except OSError:
        return 0


@pytest.fixture
def bound_not_accepting() -> Iterator[LocalEndpoint]:
    endpoint = LocalEndpoint(lambda environ, start_response: [])
    endpoint.bind()  # listening, but nothing accepts: a busy accept loop at its worst
    try:
        yield endpoint
    finally:
        endpoint.stop()


@pytest.mark.timeout(60)
@pytest.mark.skipif(_somaxconn() < CLIENTS, reason="the kernel caps the backlog below the test's clients")
def test_connections_wait_in_the_backlog_instead_of_being_dropped(bound_not_accepting: LocalEndpoint) -> None:
    clients: list[socket.socket] = []
    try:
        for _ in range(CLIENTS):
            client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            clients.append(client)
            client.settimeout(2.0)
            # The kernel completes the handshake for a connection it queues; a full queue drops
            # the SYN and connect() times out.
            client.connect(("127.0.0.1", bound_not_accepting.port))
    finally:
        for client in clients:
            client.close()
    assert len(clients) == CLIENTS
