"""Duplicate detection (same message_id within the window stored once) and time to live."""

import datetime
import time

from azure.servicebus import ServiceBusMessage, ServiceBusSubQueue

from support import body, receive_exactly


def test_duplicate_sends_within_the_window_are_stored_once(client, herald):
    with client.get_queue_sender("duplicates") as sender:
        sender.send_messages(ServiceBusMessage("first", message_id="order-1"))
        sender.send_messages(ServiceBusMessage("second copy", message_id="order-1"))  # acknowledged, not stored
        sender.send_messages(ServiceBusMessage("other", message_id="order-2"))
    with client.get_queue_sender("duplicates") as sender:  # another connection: same window
        sender.send_messages(ServiceBusMessage("third copy", message_id="order-1"))
    assert herald.counts({"queue": "duplicates"})["active"] == 2
    with client.get_queue_receiver("duplicates") as receiver:
        messages = receive_exactly(receiver, 2)
        assert [(m.message_id, body(m)) for m in messages] == [("order-1", b"first"), ("order-2", b"other")]
        for message in messages:
            receiver.complete_message(message)
    # still within the window after the original was completed
    with client.get_queue_sender("duplicates") as sender:
        sender.send_messages(ServiceBusMessage("late copy", message_id="order-1"))
    assert herald.counts({"queue": "duplicates"})["active"] == 0


def test_duplicates_inside_one_batch_are_stored_once(client, herald):
    with client.get_queue_sender("duplicates-batch") as sender:
        batch = sender.create_message_batch()
        for text, message_id in [("a", "x"), ("b", "y"), ("a again", "x")]:
            batch.add_message(ServiceBusMessage(text, message_id=message_id))
        sender.send_messages(batch)
    with client.get_queue_receiver("duplicates-batch") as receiver:
        messages = receive_exactly(receiver, 2)
        assert [(m.message_id, body(m)) for m in messages] == [("x", b"a"), ("y", b"b")]
        for message in messages:
            receiver.complete_message(message)


def test_same_message_id_after_the_window_is_stored_again(client, herald):
    with client.get_queue_sender("duplicates-window") as sender:
        sender.send_messages(ServiceBusMessage("one", message_id="w"))
        time.sleep(3)  # window 2 s
        sender.send_messages(ServiceBusMessage("two", message_id="w"))
    assert herald.counts({"queue": "duplicates-window"})["active"] == 2


def test_without_duplicate_detection_every_send_is_stored(client, herald):
    with client.get_queue_sender("no-duplicate-detection") as sender:
        sender.send_messages(ServiceBusMessage("one", message_id="same"))
        sender.send_messages(ServiceBusMessage("two", message_id="same"))
    assert herald.counts({"queue": "no-duplicate-detection"})["active"] == 2


def test_message_time_to_live_expires_to_the_dead_letter_queue(client, herald):
    with client.get_queue_sender("ttl-message") as sender:
        sender.send_messages(ServiceBusMessage("short-lived", time_to_live=datetime.timedelta(seconds=1)))
        sender.send_messages(ServiceBusMessage("long-lived", time_to_live=datetime.timedelta(minutes=10)))
    time.sleep(2)
    with client.get_queue_receiver("ttl-message") as receiver:
        [alive] = receive_exactly(receiver, 1)
        assert body(alive) == b"long-lived"
        receiver.complete_message(alive)
    with client.get_queue_receiver("ttl-message", sub_queue=ServiceBusSubQueue.DEAD_LETTER) as dlq:
        [dead] = receive_exactly(dlq, 1)
        assert body(dead) == b"short-lived"
        # Herald's reason; Azure Service Bus writes "TTLExpiredException"
        assert dead.dead_letter_reason in ("TTLExpired", "TTLExpiredException")
        dlq.complete_message(dead)


def test_entity_default_time_to_live(client, herald):
    with client.get_queue_sender("ttl-default") as sender:
        sender.send_messages(ServiceBusMessage("default ttl 1 s"))
    time.sleep(2)
    with client.get_queue_receiver("ttl-default") as receiver:
        assert receiver.receive_messages(max_message_count=1, max_wait_time=1) == []
    assert herald.counts({"queue": "ttl-default"})["deadLettered"] == 1


def test_expired_messages_dropped_when_the_entity_says_so(client, herald):
    with client.get_queue_sender("ttl-drop") as sender:
        sender.send_messages(ServiceBusMessage("dropped", time_to_live=datetime.timedelta(seconds=1)))
    time.sleep(2)
    with client.get_queue_receiver("ttl-drop") as receiver:
        assert receiver.receive_messages(max_message_count=1, max_wait_time=1) == []
    counts = herald.counts({"queue": "ttl-drop"})
    assert (counts["active"], counts["deadLettered"]) == (0, 0)


def test_time_to_live_and_expiry_round_trip(client):
    with client.get_queue_sender("ttl-roundtrip") as sender:
        sender.send_messages(ServiceBusMessage("ttl", time_to_live=datetime.timedelta(seconds=90)))
    with client.get_queue_receiver("ttl-roundtrip") as receiver:
        [message] = receive_exactly(receiver, 1)
        assert message.time_to_live == datetime.timedelta(seconds=90)
        assert abs((message.expires_at_utc - message.enqueued_time_utc).total_seconds() - 90) < 1
        receiver.complete_message(message)
