"""Message locks: renewal, expiry (then MessageLockLostError), max delivery count (then the
dead-letter queue with MaxDeliveryCountExceeded)."""

import datetime
import time

import pytest
from azure.servicebus import ServiceBusMessage, ServiceBusSubQueue
from azure.servicebus.exceptions import MessageLockLostError

from support import body, receive_exactly


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


def test_renew_message_lock_extends_the_lock(client, herald):
    """Lock duration 4 s: renewed after 2.5 s, the message is still settleable after 5.5 s."""
    with client.get_queue_sender("renew-lock") as sender:
        sender.send_messages(ServiceBusMessage("long job"))
    with client.get_queue_receiver("renew-lock") as receiver:
        [message] = receive_exactly(receiver, 1)
        first_lock = message.locked_until_utc
        assert utc_now() < first_lock <= utc_now() + datetime.timedelta(seconds=5)
        time.sleep(2.5)
        renewed = receiver.renew_message_lock(message)
        assert renewed > first_lock + datetime.timedelta(seconds=1.5)
        assert renewed <= utc_now() + datetime.timedelta(seconds=5)
        assert message.locked_until_utc == renewed
        time.sleep(3)  # past the first lock's expiry, before the renewed one's
        assert utc_now() > first_lock
        assert herald.counts({"queue": "renew-lock"})["locked"] == 1
        receiver.complete_message(message)
    counts = herald.counts({"queue": "renew-lock"})
    assert (counts["active"], counts["locked"]) == (0, 0)


def test_lock_expiry_then_complete_raises_message_lock_lost(client):
    """Lock duration 2 s: after it the message is delivered again (count 1), and completing it
    with the first lock raises MessageLockLostError."""
    with client.get_queue_sender("lock-expiry") as sender:
        sender.send_messages(ServiceBusMessage("slow"))
    with client.get_queue_receiver("lock-expiry") as receiver:
        [message] = receive_exactly(receiver, 1)
        time.sleep(3)
        with pytest.raises(MessageLockLostError):
            receiver.complete_message(message)
        [again] = receive_exactly(receiver, 1, timeout=10)
        assert again.sequence_number == message.sequence_number
        assert again.delivery_count == 1
        receiver.complete_message(again)


def test_renewing_an_expired_lock_raises_message_lock_lost(client):
    """The SDK checks an expired lock itself before complete; renew goes to the server, whose
    `$management` answer must carry com.microsoft:message-lock-lost."""
    with client.get_queue_sender("renew-expired") as sender:
        sender.send_messages(ServiceBusMessage("expired"))
    with client.get_queue_receiver("renew-expired") as receiver:
        [message] = receive_exactly(receiver, 1)
        time.sleep(3)
        with pytest.raises(MessageLockLostError):
            receiver.renew_message_lock(message)
        # the lock expired and someone else took the message: renewing the old lock is lost too
        [again] = receive_exactly(receiver, 1, timeout=10)
        with pytest.raises(MessageLockLostError):
            receiver.renew_message_lock(message)
        receiver.complete_message(again)


def test_max_delivery_count_then_dead_letter_queue(client, herald):
    """Max delivery count 3: three deliveries (counts 0, 1, 2), then the message is in the
    dead-letter queue with the reason MaxDeliveryCountExceeded."""
    with client.get_queue_sender("max-delivery") as sender:
        sender.send_messages(ServiceBusMessage("poison", message_id="poison-1"))
    counts_seen = []
    with client.get_queue_receiver("max-delivery") as receiver:
        for _ in range(3):
            [message] = receive_exactly(receiver, 1, timeout=10)
            counts_seen.append(message.delivery_count)
            receiver.abandon_message(message)
        assert receiver.receive_messages(max_message_count=1, max_wait_time=2) == []
    assert counts_seen == [0, 1, 2]
    counts = herald.counts({"queue": "max-delivery"})
    assert (counts["active"], counts["locked"], counts["deadLettered"]) == (0, 0, 1)
    with client.get_queue_receiver("max-delivery", sub_queue=ServiceBusSubQueue.DEAD_LETTER) as dlq:
        [dead] = receive_exactly(dlq, 1)
        assert body(dead) == b"poison"
        assert dead.message_id == "poison-1"
        assert dead.dead_letter_reason == "MaxDeliveryCountExceeded"
        assert dead.dead_letter_error_description  # Service Bus explains it; the text is free
        assert dead.dead_letter_source == "max-delivery"
        dlq.complete_message(dead)
