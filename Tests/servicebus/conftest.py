"""Fixtures of the Azure Service Bus SDK suite: one `herald serve` for the whole session (debug
build, fresh data folder, loopback ports), its entities made up front with the CLI, keys made with
`herald keys create`, and a `ServiceBusClient` per test built from the printed connection string.

Each test uses entities of its own (the table below), so tests do not see each other's messages.
The server's log is kept in its temporary folder and printed when a test fails.
"""

from __future__ import annotations

import os
from typing import Iterator

import pytest
from azure.servicebus import ServiceBusClient
from azure.servicebus.management import ServiceBusAdministrationClient

from herald_server import Entity, HeraldServer

Q, T, S = "queue", "topic", "subscription"

# Every entity the tests use, created with `herald queue|topic|subscription create` before the
# server starts. Options are the CLI's (`herald queue create --help`).
ENTITIES = [
    # sending and receiving
    Entity(Q, "send-single"),
    Entity(Q, "tls"),
    Entity(Q, "send-list-batch"),
    Entity(Q, "receive-count"),
    Entity(Q, "receive-empty"),
    Entity(Q, "receive-and-delete"),
    Entity(Q, "prefetch-release"),
    Entity(Q, "credit-left-over"),
    Entity(Q, "released-count"),
    Entity(Q, "large-message"),
    Entity(Q, "value-body"),
    # settlement
    Entity(Q, "complete"),
    Entity(Q, "abandon"),
    Entity(Q, "defer"),
    Entity(Q, "dead-letter"),
    Entity(Q, "settle-mgmt"),
    # locks
    Entity(Q, "renew-lock", {"lock-duration": "4s"}),
    Entity(Q, "lock-expiry", {"lock-duration": "2s"}),
    Entity(Q, "renew-expired", {"lock-duration": "2s"}),
    Entity(Q, "max-delivery", {"max-delivery-count": 3}),
    # management: schedule, cancel, peek, deferred
    Entity(Q, "schedule"),
    Entity(Q, "schedule-annotation"),
    Entity(Q, "cancel-scheduled"),
    Entity(Q, "peek"),
    Entity(Q, "peek-empty"),
    Entity(Q, "peek-delivery-count"),
    Entity(Q, "deferred-by-sequence"),
    # duplicate detection and time to live
    Entity(Q, "duplicates", {"duplicate-window": "1m"}),
    Entity(Q, "duplicates-batch", {"duplicate-window": "1m"}),
    Entity(Q, "duplicates-window", {"duplicate-window": "2s"}),
    Entity(Q, "no-duplicate-detection"),
    Entity(Q, "ttl-message"),
    Entity(Q, "ttl-default", {"ttl": "1s"}),
    Entity(Q, "ttl-drop", {"drop-expired": True}),
    Entity(Q, "ttl-roundtrip"),
    # properties and annotations
    Entity(Q, "properties"),
    Entity(Q, "properties-to"),
    Entity(Q, "properties-peek-deferred-dlq"),
    Entity(Q, "annotations"),
    # subscriptions
    Entity(T, "orders"),
    Entity(S, "all", topic="orders"),
    Entity(S, "red", topic="orders", options={"property": "color=red"}),
    Entity(S, "invoices", topic="orders", options={"subject": "invoice"}),
    Entity(S, "correlated", topic="orders", options={"correlation-id": "order-42"}),
    Entity(T, "events"),
    Entity(S, "audit", topic="events"),
    Entity(T, "schedule-topic"),
    Entity(S, "all", topic="schedule-topic"),
    Entity(T, "no-rules"),
    Entity(S, "all", topic="no-rules"),
    Entity(T, "rules"),
    Entity(S, "managed", topic="rules"),
    # access rights
    Entity(Q, "auth"),
    Entity(Q, "auth-other"),
    # HTTP <-> AMQP
    Entity(Q, "amqp-to-http"),
    Entity(Q, "http-to-amqp"),
    Entity(T, "cross-topic"),
    Entity(S, "sub", topic="cross-topic"),
    # sessions
    Entity(Q, "sessions", {"requires-session": True}),
    Entity(Q, "sessions-locked", {"requires-session": True}),
    Entity(Q, "sessions-next", {"requires-session": True}),
    Entity(Q, "sessions-empty", {"requires-session": True}),
    Entity(Q, "sessions-state", {"requires-session": True}),
    Entity(Q, "sessions-peek-defer", {"requires-session": True}),
    Entity(Q, "sessions-defer", {"requires-session": True}),
    Entity(Q, "sessions-lock-expiry", {"requires-session": True, "lock-duration": "2s"}),
    Entity(T, "session-topic"),
    Entity(S, "sessions", topic="session-topic", options={"requires-session": True}),
]

EXTRA_KEYS = [
    {"name": "sender", "rights": "send"},
    {"name": "listener", "rights": "listen"},
    {"name": "auth-only", "rights": "manage", "entity": "auth"},
]


@pytest.fixture(scope="session")
def herald() -> Iterator[HeraldServer]:
    server = HeraldServer(ENTITIES, extra_keys=EXTRA_KEYS, keep=os.environ.get("HERALD_SERVICEBUS_KEEP") == "1", tls=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def client(herald: HeraldServer) -> Iterator[ServiceBusClient]:
    """A client of the admin key's connection string; retry_total=0 so that the first error the
    server causes is the one the test sees. HERALD_SERVICEBUS_TRACE=1 logs the AMQP frames (with
    pytest's --log-file=PATH --log-file-level=DEBUG)."""
    trace = os.environ.get("HERALD_SERVICEBUS_TRACE") == "1"
    with ServiceBusClient.from_connection_string(herald.connection_string, retry_total=0, logging_enable=trace) as client:
        yield client


@pytest.fixture
def admin(herald: HeraldServer) -> Iterator[ServiceBusAdministrationClient]:
    """The SDK's administration client on the server's administration API (HTTPS, trusting the
    harness's certificate), with the admin key."""
    with ServiceBusAdministrationClient.from_connection_string(
        herald.admin_connection_string(), connection_verify=str(herald.certificate), retry_total=0
    ) as admin:
        yield admin


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        server = item.funcargs.get("herald")
        if server is not None:
            report.sections.append(("herald serve log (last 60 lines)", "\n".join(server.log().splitlines()[-60:])))


def pytest_collection_modifyitems(config, items):
    if os.environ.get("HERALD_SERVICEBUS_SKIP_SESSIONS") == "1":
        skip = pytest.mark.skip(reason="HERALD_SERVICEBUS_SKIP_SESSIONS=1")
        for item in items:
            if "sessions" in item.keywords:
                item.add_marker(skip)
