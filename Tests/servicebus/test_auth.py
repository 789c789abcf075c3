"""`$cbs` tokens are verified: a forged key, an expired token, an unknown key name are refused
(ServiceBusAuthenticationError); a valid token whose key lacks the right or the entity is refused
the link (ServiceBusAuthorizationError)."""

import base64
import hashlib
import hmac
import time
import urllib.parse

import pytest
from azure.servicebus import ServiceBusClient, ServiceBusMessage
from azure.servicebus.exceptions import ServiceBusAuthenticationError, ServiceBusAuthorizationError

from support import body, receive_exactly


def sas_token(resource: str, key_name: str, key: str, expiry: int) -> str:
    """A Service Bus shared access signature, the documented way: HMAC-SHA256 of the URL-encoded
    resource, a newline and the expiry, keyed with the shared access key."""
    encoded = urllib.parse.quote_plus(resource)
    signature = hmac.new(key.encode(), f"{encoded}\n{expiry}".encode(), hashlib.sha256).digest()
    return f"SharedAccessSignature sr={encoded}&sig={urllib.parse.quote_plus(base64.b64encode(signature))}&se={expiry}&skn={key_name}"


def sas_connection_string(herald, token: str) -> str:
    return f"Endpoint=sb://localhost:{herald.amqp_port};SharedAccessSignature={token};UseDevelopmentEmulator=true"


def send_one(connection_string: str, queue: str = "auth"):
    with ServiceBusClient.from_connection_string(connection_string, retry_total=0) as client:
        with client.get_queue_sender(queue) as sender:
            sender.send_messages(ServiceBusMessage("hello"))


def test_wrong_shared_access_key_is_refused(herald):
    admin = herald.keys["admin"]
    forged = admin.connection_string.replace(admin.shared_access_key, base64.b64encode(b"x" * 32).decode())
    assert forged != admin.connection_string
    started = time.monotonic()
    with pytest.raises(ServiceBusAuthenticationError):
        send_one(forged)
    assert time.monotonic() - started < 30
    assert herald.counts({"queue": "auth"})["active"] == 0


def test_expired_token_is_refused(herald):
    admin = herald.keys["admin"]
    token = sas_token(f"sb://localhost:{herald.amqp_port}/auth", admin.key_name, admin.shared_access_key, int(time.time()) - 60)
    with pytest.raises(ServiceBusAuthenticationError):
        send_one(sas_connection_string(herald, token))
    assert herald.counts({"queue": "auth"})["active"] == 0


def test_valid_hand_made_token_is_accepted(herald):
    """The control for the two tests around it: the same token, unexpired, works."""
    admin = herald.keys["admin"]
    token = sas_token(f"sb://localhost:{herald.amqp_port}/auth", admin.key_name, admin.shared_access_key, int(time.time()) + 600)
    send_one(sas_connection_string(herald, token))
    with ServiceBusClient.from_connection_string(herald.connection_string, retry_total=0) as client:
        with client.get_queue_receiver("auth") as receiver:
            [message] = receive_exactly(receiver, 1)
            assert body(message) == b"hello"
            receiver.complete_message(message)


def test_token_signed_with_another_key_is_refused(herald):
    admin = herald.keys["admin"]
    token = sas_token(f"sb://localhost:{herald.amqp_port}/auth", admin.key_name, "not-the-key", int(time.time()) + 600)
    with pytest.raises(ServiceBusAuthenticationError):
        send_one(sas_connection_string(herald, token))


def test_unknown_key_name_is_refused(herald):
    admin = herald.keys["admin"]
    token = sas_token(f"sb://localhost:{herald.amqp_port}/auth", "no-such-key", admin.shared_access_key, int(time.time()) + 600)
    with pytest.raises(ServiceBusAuthenticationError):
        send_one(sas_connection_string(herald, token))


def test_token_for_another_entity_does_not_open_this_one(herald):
    admin = herald.keys["admin"]
    token = sas_token(f"sb://localhost:{herald.amqp_port}/auth-other", admin.key_name, admin.shared_access_key, int(time.time()) + 600)
    with pytest.raises((ServiceBusAuthenticationError, ServiceBusAuthorizationError)):
        send_one(sas_connection_string(herald, token), queue="auth")
    assert herald.counts({"queue": "auth"})["active"] == 0


def test_listen_only_key_cannot_send(herald):
    with pytest.raises(ServiceBusAuthorizationError):
        send_one(herald.keys["listener"].connection_string)
    assert herald.counts({"queue": "auth"})["active"] == 0


def test_send_only_key_cannot_receive(herald):
    with ServiceBusClient.from_connection_string(herald.keys["sender"].connection_string, retry_total=0) as client:
        with client.get_queue_sender("auth") as sender:
            sender.send_messages(ServiceBusMessage("for nobody"))
        with pytest.raises(ServiceBusAuthorizationError):
            with client.get_queue_receiver("auth") as receiver:
                receiver.receive_messages(max_message_count=1, max_wait_time=2)
    assert herald.counts({"queue": "auth"})["active"] == 1
    herald.post("/v1/messages/purge", {"entity": {"queue": "auth"}}, expect=(200,))


def test_entity_scoped_key_opens_only_its_entity(herald):
    scoped = herald.keys["auth-only"].connection_string
    send_one(scoped, queue="auth")
    with pytest.raises((ServiceBusAuthorizationError, ServiceBusAuthenticationError)):
        send_one(scoped, queue="auth-other")
    assert herald.counts({"queue": "auth-other"})["active"] == 0
    assert herald.counts({"queue": "auth"})["active"] == 1
    herald.post("/v1/messages/purge", {"entity": {"queue": "auth"}}, expect=(200,))
