"""The same entities over AMQP and HTTP: a message sent with the SDK is received over the HTTP API
(and the other way round) with its body, properties, sequence number and delivery count intact."""

import base64

from azure.servicebus import ServiceBusMessage

from herald_server import b64
from support import body, receive_exactly

BODY = bytes(range(256))


def http_receive(herald, entity, count=1, wait_ms=5000):
    answer = herald.post("/v1/messages/receive", {"entity": entity, "maxCount": count, "maxWaitMs": wait_ms}, expect=(200,))
    return answer["messages"]


def test_sent_over_amqp_received_over_http(client, herald):
    with client.get_queue_sender("amqp-to-http") as sender:
        sender.send_messages(
            ServiceBusMessage(
                BODY,
                message_id="amqp-1",
                subject="s",
                content_type="application/octet-stream",
                correlation_id="c-1",
                reply_to="r",
                application_properties={"text": "t", "int": 5, "double": 1.5, "bool": True},
            )
        )
    with client.get_queue_receiver("amqp-to-http") as receiver:
        [peeked] = receiver.peek_messages(max_message_count=1)
    [received] = http_receive(herald, {"queue": "amqp-to-http"})
    message = received["message"]
    assert base64.b64decode(message["body"]) == BODY
    assert message["messageId"] == "amqp-1"
    assert (message["subject"], message["contentType"], message["correlationId"], message["replyTo"]) == ("s", "application/octet-stream", "c-1", "r")
    assert message["applicationProperties"] == {"text": {"string": "t"}, "int": {"int": 5}, "double": {"double": 1.5}, "bool": {"bool": True}}
    assert received["sequenceNumber"] == peeked.sequence_number
    assert received["deliveryCount"] == 1  # HTTP counts this delivery
    # abandoned over HTTP, received over AMQP: one earlier delivery
    herald.post("/v1/locks/abandon", {"lockToken": received["lockToken"]})
    with client.get_queue_receiver("amqp-to-http") as receiver:
        [again] = receive_exactly(receiver, 1)
        assert again.sequence_number == received["sequenceNumber"]
        assert again.delivery_count == 1
        assert body(again) == BODY
        receiver.abandon_message(again)
    # abandoned over AMQP, received over HTTP: the third delivery
    [third] = http_receive(herald, {"queue": "amqp-to-http"})
    assert third["sequenceNumber"] == received["sequenceNumber"]
    assert third["deliveryCount"] == 3
    herald.post("/v1/locks/complete", {"lockTokens": [third["lockToken"]]})
    assert herald.counts({"queue": "amqp-to-http"})["active"] == 0


def test_sent_over_http_received_over_amqp(client, herald):
    answer = herald.post(
        "/v1/messages/send",
        {
            "entity": {"queue": "http-to-amqp"},
            "messages": [
                {
                    "messageId": "http-1",
                    "body": b64(BODY),
                    "subject": "s",
                    "contentType": "application/octet-stream",
                    "correlationId": "c-1",
                    "replyTo": "r",
                    "applicationProperties": {"text": {"string": "t"}, "int": {"int": -5}, "double": {"double": 2.25}, "bool": {"bool": False}},
                },
                {"text": "second"},
            ],
        },
        expect=(200,),
    )
    first_sequence = answer["receipts"][0]["sequenceNumber"]
    with client.get_queue_receiver("http-to-amqp") as receiver:
        first, second = receive_exactly(receiver, 2)
        assert body(first) == BODY
        assert first.sequence_number == first_sequence
        assert second.sequence_number == answer["receipts"][1]["sequenceNumber"]
        assert body(second) == b"second"
        assert first.message_id == "http-1"
        assert (first.subject, first.content_type, first.correlation_id, first.reply_to) == ("s", "application/octet-stream", "c-1", "r")
        assert first.application_properties == {b"text": b"t", b"int": -5, b"double": 2.25, b"bool": False}
        assert first.delivery_count == 0
        receiver.complete_message(second)
        receiver.abandon_message(first)
    [again] = http_receive(herald, {"queue": "http-to-amqp"})
    assert again["sequenceNumber"] == first_sequence
    assert again["deliveryCount"] == 2
    herald.post("/v1/locks/complete", {"lockTokens": [again["lockToken"]]})
    assert herald.counts({"queue": "http-to-amqp"})["active"] == 0


def test_topic_sent_over_http_received_from_subscription_over_amqp(client, herald):
    answer = herald.post("/v1/messages/send", {"entity": {"topic": "cross-topic"}, "messages": [{"text": "via http"}]}, expect=(200,))
    with client.get_subscription_receiver("cross-topic", "sub") as receiver:
        [message] = receive_exactly(receiver, 1)
        assert body(message) == b"via http"
        receiver.dead_letter_message(message, reason="why", error_description="because")
    [dead] = http_receive(herald, {"topic": "cross-topic", "subscription": "sub", "deadLetter": True})
    assert dead["message"]["text" if "text" in dead["message"] else "body"] in ("via http", b64(b"via http"))
    assert (dead["deadLetterReason"], dead["deadLetterDescription"]) == ("why", "because")
    assert dead["sequenceNumber"] == message.sequence_number
    assert answer["receipts"][0]["isDuplicate"] is False
    herald.post("/v1/locks/complete", {"lockTokens": [dead["lockToken"]]})
