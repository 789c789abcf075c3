"""Helpers the Service Bus tests share."""

from __future__ import annotations

import time

from azure.servicebus import ServiceBusReceivedMessage


def body(message: ServiceBusReceivedMessage) -> bytes:
    """A received message's body (one data section, or several joined)."""
    return b"".join(message.body)


def receive_exactly(receiver, count: int, timeout: float = 20, then_none: bool = False, **kwargs) -> list[ServiceBusReceivedMessage]:
    """Receives until `count` messages came (failing past `timeout` s); with `then_none`, checks
    that no more come within a second.

    A receive call that returns with fewer messages than it asked for leaves credit on the link, as
    the SDK does; a message the server sends on it while no call runs is released by the SDK.
    Tests of other things keep clear of that by asking for exactly what they expect."""
    messages: list[ServiceBusReceivedMessage] = []
    deadline = time.monotonic() + timeout
    while len(messages) < count:
        left = deadline - time.monotonic()
        assert left > 0, f"received {len(messages)} of {count} messages in {timeout} s"
        messages += receiver.receive_messages(max_message_count=count - len(messages), max_wait_time=min(left, 5), **kwargs)
    if then_none:
        extra = receiver.receive_messages(max_message_count=1, max_wait_time=1)
        assert extra == [], f"expected {count} messages, got more: {[body(m) for m in extra]}"
    return messages
