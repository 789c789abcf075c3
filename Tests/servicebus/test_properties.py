"""Message properties and annotations both ways: what a sender sets comes back to receivers
(received, peeked, deferred, dead-lettered), and the broker's annotations are there."""

import datetime

import pytest
import uuid

from azure.servicebus import ServiceBusMessage, ServiceBusSubQueue
from azure.servicebus.amqp import AmqpAnnotatedMessage

from support import body, receive_exactly

APPLICATION_PROPERTIES = {
    "text": "héllo wörld",
    "empty": "",
    "int": 42,
    "negative": -7,
    "int32-max": 2**31 - 1,  # the SDK encodes a Python int as an AMQP int (32 bits)
    "double": 2.5,
    "true": True,
    "false": False,
}


def expected_application_properties():
    """The SDK reads string keys and string values back as bytes."""
    return {k.encode(): (v.encode() if isinstance(v, str) else v) for k, v in APPLICATION_PROPERTIES.items()}


def sent_message(message_id: str) -> ServiceBusMessage:
    return ServiceBusMessage(
        b"payload",
        application_properties=APPLICATION_PROPERTIES,
        subject="invoice",
        content_type="application/json",
        correlation_id="corr-1",
        message_id=message_id,
        reply_to="replies",
    )


def assert_properties(message, message_id: str):
    assert body(message) == b"payload"
    assert message.message_id == message_id
    assert message.subject == "invoice"
    assert message.content_type == "application/json"
    assert message.correlation_id == "corr-1"
    assert message.reply_to == "replies"
    assert message.session_id is None
    properties = {k: v for k, v in (message.application_properties or {}).items() if k not in (b"DeadLetterReason", b"DeadLetterErrorDescription")}
    assert properties == expected_application_properties()


def test_properties_round_trip_on_receive(client):
    message_id = str(uuid.uuid4())
    with client.get_queue_sender("properties") as sender:
        sender.send_messages(sent_message(message_id))
    with client.get_queue_receiver("properties") as receiver:
        [message] = receive_exactly(receiver, 1)
        assert_properties(message, message_id)
        assert isinstance(message.application_properties[b"double"], float)
        assert message.application_properties[b"true"] is True
        receiver.complete_message(message)


def test_properties_round_trip_through_peek_deferral_and_dead_letter(client):
    message_id = "props-everywhere"
    with client.get_queue_sender("properties-peek-deferred-dlq") as sender:
        sender.send_messages(sent_message(message_id))
    with client.get_queue_receiver("properties-peek-deferred-dlq") as receiver:
        [peeked] = receiver.peek_messages(max_message_count=1)
        assert_properties(peeked, message_id)
        [message] = receive_exactly(receiver, 1)
        receiver.defer_message(message)
        [deferred] = receiver.receive_deferred_messages([message.sequence_number])
        assert_properties(deferred, message_id)
        receiver.dead_letter_message(deferred, reason="r", error_description="d")
    with client.get_queue_receiver("properties-peek-deferred-dlq", sub_queue=ServiceBusSubQueue.DEAD_LETTER) as dlq:
        [dead] = receive_exactly(dlq, 1)
        assert_properties(dead, message_id)
        assert dead.sequence_number == message.sequence_number
        dlq.complete_message(dead)


def test_to_and_reply_to_session_id_round_trip(client):
    """`to` (properties.to) and `reply_to_session_id` (properties.reply-to-group-id) are part of
    the Service Bus message; a broker that keeps them returns them."""
    with client.get_queue_sender("properties-to") as sender:
        sender.send_messages(ServiceBusMessage("addressed", to="billing", reply_to="replies", reply_to_session_id="reply-session"))
    with client.get_queue_receiver("properties-to") as receiver:
        [message] = receive_exactly(receiver, 1)
        receiver.complete_message(message)
    assert message.reply_to == "replies"
    assert (message.to, message.reply_to_session_id) == ("billing", "reply-session")


def test_broker_annotations_on_received_messages(client):
    before = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=1)
    with client.get_queue_sender("annotations") as sender:
        sender.send_messages(ServiceBusMessage("annotated"))
    with client.get_queue_receiver("annotations") as receiver:
        [message] = receive_exactly(receiver, 1)
        annotations = message.raw_amqp_message.annotations
        assert annotations[b"x-opt-sequence-number"] == message.sequence_number
        assert isinstance(annotations[b"x-opt-enqueued-time"], int)  # a timestamp, in ms
        assert before <= message.enqueued_time_utc <= datetime.datetime.now(datetime.timezone.utc)
        assert message.locked_until_utc > message.enqueued_time_utc
        assert message.raw_amqp_message.header.delivery_count == 0
        receiver.complete_message(message)


def test_custom_message_annotations_round_trip(client):
    """Message annotations a sender sets (other than the broker's x-opt-…) come back as sent."""
    with client.get_queue_sender("annotations") as sender:
        sender.send_messages(AmqpAnnotatedMessage(data_body=b"custom", annotations={"custom-annotation": "value", "x-opt-custom": 7}))
    with client.get_queue_receiver("annotations") as receiver:
        [message] = receive_exactly(receiver, 1)
        receiver.complete_message(message)
    assert body(message) == b"custom"
    annotations = message.raw_amqp_message.annotations
    assert annotations.get(b"custom-annotation") == b"value", annotations
    assert annotations.get(b"x-opt-custom") == 7, annotations
