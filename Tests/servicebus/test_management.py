"""`$management` operations through the SDK: schedule_messages, cancel_scheduled_messages,
peek_messages, receive_deferred_messages (more in test_settlement), and scheduling by the
x-opt-scheduled-enqueue-time annotation."""

import datetime
import time

import pytest
from azure.servicebus import ServiceBusMessage, ServiceBusMessageState
from azure.servicebus.exceptions import MessageNotFoundError, ServiceBusError

from support import body, receive_exactly


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


def test_schedule_messages_then_delivered_at_the_time(client, herald):
    at = utc_now() + datetime.timedelta(seconds=6)
    with client.get_queue_sender("schedule") as sender:
        [sequence] = sender.schedule_messages(ServiceBusMessage("at three"), at)
        two = sender.schedule_messages([ServiceBusMessage("a"), ServiceBusMessage("b")], at)
    assert isinstance(sequence, int) and len(two) == 2 and len({sequence, *two}) == 3
    assert herald.counts({"queue": "schedule"})["scheduled"] == 3
    with client.get_queue_receiver("schedule") as receiver:
        peeked = receiver.peek_messages(max_message_count=10)
        assert [m.sequence_number for m in peeked] == [sequence, *two]
        assert all(m.state == ServiceBusMessageState.SCHEDULED for m in peeked)
        assert abs((peeked[0].scheduled_enqueue_time_utc - at).total_seconds()) < 0.01
        early = receiver.receive_messages(max_message_count=3, max_wait_time=1)
        assert early == [] or utc_now() >= at, "delivered before its scheduled time"
        messages = early + receive_exactly(receiver, 3 - len(early), timeout=15) if len(early) < 3 else early
        assert utc_now() >= at
        assert sorted(m.sequence_number for m in messages) == sorted([sequence, *two])
        assert sorted(body(m) for m in messages) == [b"a", b"at three", b"b"]
        for message in messages:
            receiver.complete_message(message)


def test_scheduled_enqueue_time_on_a_sent_message(client):
    """ServiceBusMessage(scheduled_enqueue_time_utc=…) sent with send_messages carries the
    x-opt-scheduled-enqueue-time annotation."""
    at = utc_now() + datetime.timedelta(seconds=6)
    with client.get_queue_sender("schedule-annotation") as sender:
        sender.send_messages(ServiceBusMessage("annotated", scheduled_enqueue_time_utc=at))
    with client.get_queue_receiver("schedule-annotation") as receiver:
        [peeked] = receiver.peek_messages(max_message_count=5)
        assert peeked.state == ServiceBusMessageState.SCHEDULED
        early = receiver.receive_messages(max_message_count=1, max_wait_time=0.5)
        assert early == [] or utc_now() >= at, "delivered before its scheduled time"
        [message] = early or receive_exactly(receiver, 1, timeout=15)
        assert utc_now() >= at
        assert body(message) == b"annotated"
        receiver.complete_message(message)


def test_cancel_scheduled_messages(client, herald):
    at = utc_now() + datetime.timedelta(hours=1)
    with client.get_queue_sender("cancel-scheduled") as sender:
        [one] = sender.schedule_messages(ServiceBusMessage("never"), at)
        many = sender.schedule_messages([ServiceBusMessage(f"never-{i}") for i in range(3)], at)
        [kept] = sender.schedule_messages(ServiceBusMessage("kept"), at)
        assert herald.counts({"queue": "cancel-scheduled"})["scheduled"] == 5
        sender.cancel_scheduled_messages(one)
        sender.cancel_scheduled_messages(many)
        assert herald.counts({"queue": "cancel-scheduled"})["scheduled"] == 1
        with pytest.raises((MessageNotFoundError, ServiceBusError)):
            sender.cancel_scheduled_messages(one)  # already cancelled
    with client.get_queue_receiver("cancel-scheduled") as receiver:
        [left] = receiver.peek_messages(max_message_count=10)
        assert left.sequence_number == kept and body(left) == b"kept"


def test_peek_messages_does_not_lock_and_pages_by_sequence_number(client, herald):
    with client.get_queue_sender("peek") as sender:
        sender.send_messages([ServiceBusMessage(f"peek-{i}", application_properties={"i": i}) for i in range(5)])
    with client.get_queue_receiver("peek") as receiver:
        first = receiver.peek_messages(max_message_count=3)
        assert [body(m) for m in first] == [b"peek-0", b"peek-1", b"peek-2"]
        assert [m.application_properties[b"i"] for m in first] == [0, 1, 2]
        assert all(m.lock_token is None and m.state == ServiceBusMessageState.ACTIVE for m in first)
        rest = receiver.peek_messages(max_message_count=10, sequence_number=first[-1].sequence_number + 1)
        assert [body(m) for m in rest] == [b"peek-3", b"peek-4"]
        assert [m.sequence_number for m in first + rest] == sorted(m.sequence_number for m in first + rest)
        with pytest.raises(ValueError):
            receiver.complete_message(first[0])  # a peeked message cannot be settled
        assert herald.counts({"queue": "peek"})["locked"] == 0
        messages = receive_exactly(receiver, 5)
        assert [m.sequence_number for m in messages] == [m.sequence_number for m in first + rest]
        assert all(m.delivery_count == 0 for m in messages)
        for message in messages:
            receiver.complete_message(message)


def test_peek_on_an_empty_queue_returns_nothing(client):
    with client.get_queue_receiver("peek-empty") as receiver:
        assert receiver.peek_messages(max_message_count=5) == []


def test_peek_shows_the_delivery_count_received_messages_show(client):
    """After one abandon, both peek and the next receive show delivery count 1 (the AMQP header's
    delivery-count: earlier deliveries)."""
    with client.get_queue_sender("peek-delivery-count") as sender:
        sender.send_messages(ServiceBusMessage("counted"))
    with client.get_queue_receiver("peek-delivery-count") as receiver:
        [message] = receive_exactly(receiver, 1)
        receiver.abandon_message(message)
        [peeked] = receiver.peek_messages(max_message_count=1, sequence_number=message.sequence_number)
        [again] = receive_exactly(receiver, 1, timeout=10)
        assert again.delivery_count == 1
        assert peeked.delivery_count == 1
        receiver.complete_message(again)


def test_receive_deferred_messages_keeps_order_asked_and_refuses_unknown(client):
    with client.get_queue_sender("deferred-by-sequence") as sender:
        sender.send_messages([ServiceBusMessage(f"d{i}") for i in range(3)])
    with client.get_queue_receiver("deferred-by-sequence") as receiver:
        messages = receive_exactly(receiver, 3)
        for message in messages:
            receiver.defer_message(message)
        numbers = [m.sequence_number for m in messages]
        deferred = receiver.receive_deferred_messages(list(reversed(numbers)))
        assert sorted(m.sequence_number for m in deferred) == sorted(numbers)
        assert {body(m) for m in deferred} == {b"d0", b"d1", b"d2"}
        for message in deferred:
            receiver.complete_message(message)
        with pytest.raises((MessageNotFoundError, ServiceBusError)):
            receiver.receive_deferred_messages([numbers[0]])  # completed: no longer there
