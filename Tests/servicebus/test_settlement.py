"""Peek-lock settlement: complete, abandon, defer, dead-letter (7.15 waits for the server's echo of
each), the dead-letter queue, and settlement through `$management` for deferred messages."""

from azure.servicebus import ServiceBusMessage, ServiceBusMessageState, ServiceBusSubQueue
from azure.servicebus.exceptions import MessageAlreadySettled
import pytest

from support import body, receive_exactly


def test_complete_removes_the_message(client, herald):
    with client.get_queue_sender("complete") as sender:
        sender.send_messages([ServiceBusMessage("done"), ServiceBusMessage("kept")])
    with client.get_queue_receiver("complete") as receiver:
        done, kept = receive_exactly(receiver, 2)
        receiver.complete_message(done)
        with pytest.raises(MessageAlreadySettled):
            receiver.complete_message(done)
        receiver.abandon_message(kept)
    counts = herald.counts({"queue": "complete"})
    assert (counts["active"], counts["locked"]) == (1, 0)
    with client.get_queue_receiver("complete") as receiver:
        [again] = receive_exactly(receiver, 1)
        assert body(again) == b"kept"
        receiver.complete_message(again)


def test_abandon_makes_the_message_available_again_with_a_higher_delivery_count(client):
    with client.get_queue_sender("abandon") as sender:
        sender.send_messages(ServiceBusMessage("again"))
    with client.get_queue_receiver("abandon") as receiver:
        [first] = receive_exactly(receiver, 1)
        assert first.delivery_count == 0
        receiver.abandon_message(first)
        [second] = receive_exactly(receiver, 1, timeout=10)
        assert body(second) == b"again"
        assert second.sequence_number == first.sequence_number
        assert second.delivery_count == 1
        assert second.lock_token != first.lock_token
        receiver.abandon_message(second)
        [third] = receive_exactly(receiver, 1, timeout=10)
        assert third.delivery_count == 2
        receiver.complete_message(third)


def test_defer_then_receive_deferred_by_sequence_number(client, herald):
    with client.get_queue_sender("defer") as sender:
        sender.send_messages([ServiceBusMessage("later"), ServiceBusMessage("now")])
    with client.get_queue_receiver("defer") as receiver:
        later, now = receive_exactly(receiver, 2)
        receiver.defer_message(later)
        receiver.complete_message(now)
        # a deferred message is never received again, only by its sequence number
        assert receiver.receive_messages(max_message_count=5, max_wait_time=1) == []
        assert herald.counts({"queue": "defer"})["deferred"] == 1
        [peeked] = receiver.peek_messages(max_message_count=5, sequence_number=later.sequence_number)  # peek goes on after the last received otherwise
        assert peeked.sequence_number == later.sequence_number
        assert peeked.state == ServiceBusMessageState.DEFERRED
        [deferred] = receiver.receive_deferred_messages([later.sequence_number])
        assert body(deferred) == b"later"
        assert deferred.sequence_number == later.sequence_number
        assert deferred.state == ServiceBusMessageState.DEFERRED
        assert deferred.lock_token is not None
        receiver.complete_message(deferred)  # a deferred message settles through $management
    counts = herald.counts({"queue": "defer"})
    assert (counts["active"], counts["deferred"], counts["locked"]) == (0, 0, 0)


def test_deferred_message_can_be_abandoned_dead_lettered_and_deferred_again(client, herald):
    with client.get_queue_sender("settle-mgmt") as sender:
        sender.send_messages([ServiceBusMessage("abandon-me"), ServiceBusMessage("dead-letter-me")])
    with client.get_queue_receiver("settle-mgmt") as receiver:
        one, two = receive_exactly(receiver, 2)
        receiver.defer_message(one)
        receiver.defer_message(two)
        d1, d2 = receiver.receive_deferred_messages([one.sequence_number, two.sequence_number])
        assert [body(d1), body(d2)] == [b"abandon-me", b"dead-letter-me"]
        receiver.abandon_message(d1)  # stays deferred (Service Bus: abandoning a deferred message keeps it deferred)
        receiver.dead_letter_message(d2, reason="mgmt-reason", error_description="via $management")
        [again] = receiver.receive_deferred_messages([one.sequence_number])
        assert again.delivery_count >= 1
        receiver.defer_message(again)
        [third] = receiver.receive_deferred_messages([one.sequence_number])
        receiver.complete_message(third)
    with client.get_queue_receiver("settle-mgmt", sub_queue=ServiceBusSubQueue.DEAD_LETTER) as dlq:
        [dead] = receive_exactly(dlq, 1)
        assert body(dead) == b"dead-letter-me"
        assert (dead.dead_letter_reason, dead.dead_letter_error_description) == ("mgmt-reason", "via $management")
        dlq.complete_message(dead)
    counts = herald.counts({"queue": "settle-mgmt"})
    assert (counts["active"], counts["deferred"], counts["deadLettered"]) == (0, 0, 0)


def test_dead_letter_with_reason_and_description(client, herald):
    with client.get_queue_sender("dead-letter") as sender:
        sender.send_messages(ServiceBusMessage("poison", application_properties={"kind": "poison"}))
    with client.get_queue_receiver("dead-letter") as receiver:
        [message] = receive_exactly(receiver, 1)
        receiver.dead_letter_message(message, reason="BadFormat", error_description="field x is missing")
        assert receiver.receive_messages(max_message_count=1, max_wait_time=1) == []
    counts = herald.counts({"queue": "dead-letter"})
    assert (counts["active"], counts["deadLettered"]) == (0, 1)
    with client.get_queue_receiver("dead-letter", sub_queue=ServiceBusSubQueue.DEAD_LETTER) as dlq:
        assert dlq.entity_path.lower() == "dead-letter/$deadletterqueue"
        [dead] = receive_exactly(dlq, 1)
        assert body(dead) == b"poison"
        assert dead.sequence_number == message.sequence_number
        assert dead.dead_letter_reason == "BadFormat"
        assert dead.dead_letter_error_description == "field x is missing"
        assert dead.dead_letter_source == "dead-letter"
        assert dead.application_properties[b"kind"] == b"poison"
        dlq.complete_message(dead)
    assert herald.counts({"queue": "dead-letter"})["deadLettered"] == 0


def test_dead_letter_without_reason(client):
    with client.get_queue_sender("dead-letter") as sender:
        sender.send_messages(ServiceBusMessage("no reason"))
    with client.get_queue_receiver("dead-letter") as receiver:
        [message] = receive_exactly(receiver, 1)
        receiver.dead_letter_message(message)
    with client.get_queue_receiver("dead-letter", sub_queue=ServiceBusSubQueue.DEAD_LETTER) as dlq:
        [dead] = receive_exactly(dlq, 1)
        assert body(dead) == b"no reason"
        dlq.complete_message(dead)
