"""Sending (single, list, batch) and receiving (peek-lock, receive-and-delete, credit, drain)."""

import datetime
import time

import pytest
from azure.servicebus import ServiceBusMessage, ServiceBusReceiveMode
from azure.servicebus.amqp import AmqpAnnotatedMessage
from azure.servicebus.exceptions import MessageSizeExceededError, OperationTimeoutError, ServiceBusError

from support import body, receive_exactly


def test_send_single_message_then_receive_in_peek_lock(client, herald):
    payload = bytes(range(256)) + "é€".encode()
    with client.get_queue_sender("send-single") as sender:
        sender.send_messages(ServiceBusMessage(payload))
    assert herald.counts({"queue": "send-single"})["active"] == 1
    before = datetime.datetime.now(datetime.timezone.utc)
    with client.get_queue_receiver("send-single") as receiver:
        [message] = receive_exactly(receiver, 1)
        assert body(message) == payload
        assert message.sequence_number >= 1
        assert message.delivery_count == 0  # the AMQP header counts earlier deliveries
        assert message.lock_token is not None
        assert message.locked_until_utc > before + datetime.timedelta(seconds=30)  # default lock: 60 s
        assert abs((message.enqueued_time_utc - before).total_seconds()) < 30
        assert herald.counts({"queue": "send-single"})["locked"] == 1
        receiver.complete_message(message)
    counts = herald.counts({"queue": "send-single"})
    assert (counts["active"], counts["locked"]) == (0, 0)


def test_send_list_and_batch_in_order(client, herald):
    with client.get_queue_sender("send-list-batch") as sender:
        sender.send_messages([ServiceBusMessage(f"list-{i}") for i in range(5)])
        batch = sender.create_message_batch()
        for i in range(50):
            batch.add_message(ServiceBusMessage(f"batch-{i}"))
        assert len(batch) == 50
        sender.send_messages(batch)
    assert herald.counts({"queue": "send-list-batch"})["active"] == 55
    with client.get_queue_receiver("send-list-batch") as receiver:
        messages = receive_exactly(receiver, 55)
        assert [body(m).decode() for m in messages] == [f"list-{i}" for i in range(5)] + [f"batch-{i}" for i in range(50)]
        sequence = [m.sequence_number for m in messages]
        # a list or a batch is one transfer: its messages are enqueued together, consecutively
        assert sequence == list(range(sequence[0], sequence[0] + 55))
        for message in messages:
            receiver.complete_message(message)
    assert herald.counts({"queue": "send-list-batch"})["active"] == 0


def test_batch_is_bounded_by_the_link_max_message_size(client):
    with client.get_queue_sender("send-list-batch") as sender:
        batch = sender.create_message_batch()
        assert 0 < batch.max_size_in_bytes <= 1024 * 1024
        with pytest.raises(ValueError):
            for _ in range(100_000):
                batch.add_message(ServiceBusMessage(b"x" * 1024))


def test_receive_honours_max_message_count(client):
    with client.get_queue_sender("receive-count") as sender:
        sender.send_messages([ServiceBusMessage(f"m{i}") for i in range(7)])
    with client.get_queue_receiver("receive-count") as receiver:
        first = receiver.receive_messages(max_message_count=3, max_wait_time=5)
        assert [body(m) for m in first] == [b"m0", b"m1", b"m2"]
        rest = receive_exactly(receiver, 4)
        assert [body(m) for m in rest] == [b"m3", b"m4", b"m5", b"m6"]
        for message in first + rest:
            receiver.complete_message(message)


def test_receive_on_an_empty_queue_returns_nothing_after_max_wait_time(client):
    with client.get_queue_receiver("receive-empty") as receiver:
        started = time.monotonic()
        assert receiver.receive_messages(max_message_count=5, max_wait_time=2) == []
        elapsed = time.monotonic() - started
        assert 1.5 <= elapsed < 10, elapsed


def test_receive_and_delete_removes_at_once(client, herald):
    with client.get_queue_sender("receive-and-delete") as sender:
        sender.send_messages([ServiceBusMessage(f"rad-{i}") for i in range(3)])
    with client.get_queue_receiver("receive-and-delete", receive_mode=ServiceBusReceiveMode.RECEIVE_AND_DELETE) as receiver:
        messages = receive_exactly(receiver, 3)
        assert [body(m) for m in messages] == [b"rad-0", b"rad-1", b"rad-2"]
        assert all(m.delivery_count == 0 for m in messages)
        with pytest.raises(ValueError):  # nothing to settle in receive-and-delete
            receiver.complete_message(messages[0])
    counts = herald.counts({"queue": "receive-and-delete"})
    assert (counts["active"], counts["locked"]) == (0, 0)
    with client.get_queue_receiver("receive-and-delete") as receiver:
        assert receiver.receive_messages(max_message_count=5, max_wait_time=1) == []


def test_prefetched_messages_are_released_on_close_without_a_delivery(client, herald):
    """A peek-lock receiver with prefetch holds messages it has not handed out; closing it drains
    the link and releases them: they are at once receivable again, their delivery count unchanged."""
    with client.get_queue_sender("prefetch-release") as sender:
        sender.send_messages([ServiceBusMessage(f"p{i}") for i in range(5)])
    with client.get_queue_receiver("prefetch-release", prefetch_count=10) as receiver:
        [first] = receiver.receive_messages(max_message_count=1, max_wait_time=5)
        assert body(first) == b"p0"
        receiver.complete_message(first)
    deadline = time.monotonic() + 10
    while herald.counts({"queue": "prefetch-release"})["locked"] and time.monotonic() < deadline:
        time.sleep(0.1)
    counts = herald.counts({"queue": "prefetch-release"})
    peeked = herald.post("/v1/messages/peek", {"entity": {"queue": "prefetch-release"}, "maxCount": 10}, expect=(200,))["messages"]
    held = [(m["sequenceNumber"], m["deliveryCount"], "lockedUntil" in m) for m in peeked]
    assert (counts["active"], counts["locked"]) == (4, 0), f"(sequence number, delivery count, locked): {held}"
    with client.get_queue_receiver("prefetch-release") as receiver:
        rest = receive_exactly(receiver, 4, timeout=10)
        assert [body(m) for m in rest] == [b"p1", b"p2", b"p3", b"p4"]
        assert [m.delivery_count for m in rest] == [0, 0, 0, 0]
        for message in rest:
            receiver.complete_message(message)


def test_message_arriving_between_receive_calls_is_delivered_once(client):
    """Credit left from a receive call that returned early may bring a message while no call is
    active; the client releases it and the next call must get it, uncounted."""
    with client.get_queue_receiver("credit-left-over") as receiver, client.get_queue_sender("credit-left-over") as sender:
        sender.send_messages([ServiceBusMessage("a"), ServiceBusMessage("b")])
        got = receiver.receive_messages(max_message_count=10, max_wait_time=3)
        assert [body(m) for m in got] == [b"a", b"b"]
        sender.send_messages(ServiceBusMessage("c"))
        time.sleep(0.5)
        [late] = receive_exactly(receiver, 1, timeout=10)
        assert body(late) == b"c"
        assert late.delivery_count == 0
        for message in got + [late]:
            receiver.complete_message(message)


def test_released_message_keeps_its_delivery_count(client, herald):
    """A message that arrives on credit left from an earlier receive call while the client waits
    for something else (here the echo of a complete) is released by the SDK, pre-settled. Released
    is not a delivery attempt: the next receive must show delivery count 0 (Service Bus counts
    abandons and lock expiries only), else such messages reach max delivery count early."""
    with client.get_queue_receiver("released-count") as receiver, client.get_queue_sender("released-count") as sender:
        sender.send_messages(ServiceBusMessage("first"))
        got = receiver.receive_messages(max_message_count=10, max_wait_time=2)  # one message: 9 credits left
        assert [body(m) for m in got] == [b"first"]
        sender.send_messages(ServiceBusMessage("released"))
        time.sleep(0.5)
        receiver.complete_message(got[0])  # reads the transfer of "released" outside a receive call
        [again] = receive_exactly(receiver, 1, timeout=10)
        assert body(again) == b"released"
        receiver.complete_message(again)
    assert again.delivery_count == 0


def test_large_message_spans_several_frames(client):
    payload = bytes(i % 251 for i in range(200_000))  # below the default max message size (256 KiB)
    with client.get_queue_sender("large-message") as sender:
        sender.send_messages(ServiceBusMessage(payload))
    with client.get_queue_receiver("large-message") as receiver:
        [message] = receive_exactly(receiver, 1)
        assert body(message) == payload
        receiver.complete_message(message)


@pytest.mark.timeout(20)  # the SDK's send timeout does not bound a rejected delivery it cannot read
def test_message_above_the_entity_max_size_is_refused(client, herald):
    """Refused with amqp:link:message-size-exceeded, which the SDK raises as MessageSizeExceededError
    (a send that is never answered would end as OperationTimeoutError after the 15 s asked)."""
    with client.get_queue_sender("large-message") as sender:
        with pytest.raises(MessageSizeExceededError):
            sender.send_messages(ServiceBusMessage(b"x" * 300_000), timeout=15)
    assert herald.counts({"queue": "large-message"})["active"] == 0


@pytest.mark.timeout(20)
def test_value_body_is_refused_with_an_error_not_stored(client, herald):
    """Herald stores data bodies only; an amqp-value body must be refused with an error the SDK
    raises (not accepted and dropped, not left unanswered)."""
    with client.get_queue_sender("value-body") as sender:
        started = time.monotonic()
        with pytest.raises(ServiceBusError) as raised:
            sender.send_messages(AmqpAnnotatedMessage(value_body={"k": 1}), timeout=15)
        assert time.monotonic() - started < 30
    assert not isinstance(raised.value, OperationTimeoutError), "the send was never answered"
    assert "not-implemented" in str(raised.value) or "data section" in str(raised.value), raised.value
    assert herald.counts({"queue": "value-body"})["active"] == 0
