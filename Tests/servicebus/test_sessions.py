"""Sessions: a named session, the next available one, a session locked by one receiver refused to
another, session state, session lock renewal, peek and deferral inside a session.

The tests of session receivers are marked `sessions`: `.ci/servicebus-tests` skips them with
HERALD_SERVICEBUS_SKIP_SESSIONS=1. The refusals at the end need no session receiver."""

import datetime
import time

import pytest
from azure.servicebus import NEXT_AVAILABLE_SESSION, ServiceBusMessage
from azure.servicebus.exceptions import OperationTimeoutError, SessionCannotBeLockedError, SessionLockLostError

from support import body, receive_exactly



def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


@pytest.mark.sessions
def test_named_session_receives_only_its_messages_in_order(client, herald):
    with client.get_queue_sender("sessions") as sender:
        sender.send_messages([ServiceBusMessage(f"{session}-{i}", session_id=session) for i in range(3) for session in ("a", "b")])
    with client.get_queue_receiver("sessions", session_id="a") as receiver:
        assert receiver.session.session_id == "a"
        assert receiver.session.locked_until_utc > utc_now()
        messages = receive_exactly(receiver, 3)
        assert [body(m) for m in messages] == [b"a-0", b"a-1", b"a-2"]
        assert all(m.session_id == "a" for m in messages)
        for message in messages:
            receiver.complete_message(message)
    with client.get_queue_receiver("sessions", session_id="b") as receiver:
        messages = receive_exactly(receiver, 3)
        assert [body(m) for m in messages] == [b"b-0", b"b-1", b"b-2"]
        for message in messages:
            receiver.complete_message(message)
    assert herald.counts({"queue": "sessions"})["active"] == 0


@pytest.mark.sessions
def test_session_locked_by_one_receiver_is_refused_to_another(client):
    with client.get_queue_sender("sessions-locked") as sender:
        sender.send_messages([ServiceBusMessage("held", session_id="locked")])
    with client.get_queue_receiver("sessions-locked", session_id="locked") as first:
        [message] = receive_exactly(first, 1)
        started = time.monotonic()
        with pytest.raises(SessionCannotBeLockedError):
            with client.get_queue_receiver("sessions-locked", session_id="locked", max_wait_time=5) as second:
                second.receive_messages(max_message_count=1, max_wait_time=2)
        assert time.monotonic() - started < 30
        first.complete_message(message)


@pytest.mark.sessions
def test_next_available_session(client):
    with client.get_queue_sender("sessions-next") as sender:
        sender.send_messages([ServiceBusMessage("x1", session_id="x"), ServiceBusMessage("y1", session_id="y")])
    seen = set()
    for _ in range(2):
        with client.get_queue_receiver("sessions-next", session_id=NEXT_AVAILABLE_SESSION, max_wait_time=5) as receiver:
            session = receiver.session.session_id
            assert session in ("x", "y") and session not in seen
            seen.add(session)
            [message] = receive_exactly(receiver, 1)
            assert message.session_id == session and body(message) == f"{session}1".encode()
            receiver.complete_message(message)
    assert seen == {"x", "y"}


@pytest.mark.sessions
def test_next_available_session_times_out_when_none_has_messages(client):
    started = time.monotonic()
    with pytest.raises(OperationTimeoutError):
        with client.get_queue_receiver("sessions-empty", session_id=NEXT_AVAILABLE_SESSION, max_wait_time=2) as receiver:
            receiver.receive_messages(max_message_count=1, max_wait_time=2)
    assert time.monotonic() - started < 30


@pytest.mark.sessions
def test_session_state_and_renew_lock(client):
    with client.get_queue_sender("sessions-state") as sender:
        sender.send_messages(ServiceBusMessage("stateful", session_id="s"))
    with client.get_queue_receiver("sessions-state", session_id="s") as receiver:
        assert receiver.session.get_state() is None
        receiver.session.set_state(b"\x00step-1")
        assert receiver.session.get_state() == b"\x00step-1"
        before = receiver.session.locked_until_utc
        time.sleep(1)
        renewed = receiver.session.renew_lock()
        assert renewed > before
        [message] = receive_exactly(receiver, 1)
        receiver.complete_message(message)
        receiver.session.set_state("done")
    with client.get_queue_receiver("sessions-state", session_id="s") as receiver:
        assert receiver.session.get_state() == b"done"
        receiver.session.set_state(None)
        assert receiver.session.get_state() is None


@pytest.mark.sessions
def test_peek_inside_a_session(client):
    with client.get_queue_sender("sessions-peek-defer") as sender:
        sender.send_messages([ServiceBusMessage(f"p{i}", session_id="p") for i in range(3)] + [ServiceBusMessage("q0", session_id="q")])
    with client.get_queue_receiver("sessions-peek-defer", session_id="p") as receiver:
        peeked = receiver.peek_messages(max_message_count=10)
        assert [body(m) for m in peeked] == [b"p0", b"p1", b"p2"]
        for message in receive_exactly(receiver, 3):
            receiver.complete_message(message)
    with client.get_queue_receiver("sessions-peek-defer", session_id="q") as receiver:
        for message in receive_exactly(receiver, 1):
            receiver.complete_message(message)


@pytest.mark.sessions
def test_deferral_inside_a_session(client):
    with client.get_queue_sender("sessions-defer") as sender:
        sender.send_messages([ServiceBusMessage(f"d{i}", session_id="d") for i in range(2)])
    with client.get_queue_receiver("sessions-defer", session_id="d") as receiver:
        messages = receive_exactly(receiver, 2)
        receiver.defer_message(messages[0])
        receiver.complete_message(messages[1])
        [deferred] = receiver.receive_deferred_messages([messages[0].sequence_number])
        assert body(deferred) == b"d0"
        receiver.complete_message(deferred)


@pytest.mark.sessions
def test_session_lock_expiry_then_session_lock_lost(client):
    with client.get_queue_sender("sessions-lock-expiry") as sender:
        sender.send_messages(ServiceBusMessage("expiring", session_id="e"))
    with client.get_queue_receiver("sessions-lock-expiry", session_id="e") as receiver:
        [message] = receive_exactly(receiver, 1)
        time.sleep(3)  # lock duration 2 s
        with pytest.raises(SessionLockLostError):
            receiver.complete_message(message)
    with client.get_queue_receiver("sessions-lock-expiry", session_id="e") as receiver:
        [again] = receive_exactly(receiver, 1)
        assert again.delivery_count == 1
        receiver.complete_message(again)


@pytest.mark.sessions
def test_sessionful_subscription(client):
    with client.get_topic_sender("session-topic") as sender:
        sender.send_messages([ServiceBusMessage("t1", session_id="t"), ServiceBusMessage("u1", session_id="u")])
    with client.get_subscription_receiver("session-topic", "sessions", session_id="u") as receiver:
        [message] = receive_exactly(receiver, 1)
        assert (body(message), message.session_id) == (b"u1", "u")
        receiver.complete_message(message)


# What needs no session receiver: refusals on a session entity.


@pytest.mark.timeout(20)
def test_message_without_session_id_to_a_session_queue_is_refused(client, herald):
    from azure.servicebus.exceptions import OperationTimeoutError, ServiceBusError

    with client.get_queue_sender("sessions-empty") as sender:
        with pytest.raises(ServiceBusError) as raised:
            sender.send_messages(ServiceBusMessage("no session"))
    assert not isinstance(raised.value, OperationTimeoutError), "the send was never answered"
    assert herald.counts({"queue": "sessions-empty"})["active"] == 0


@pytest.mark.timeout(20)
def test_receiver_without_session_on_a_session_queue_is_refused(client):
    from azure.servicebus.exceptions import OperationTimeoutError, ServiceBusError

    with pytest.raises(ServiceBusError) as raised:
        with client.get_queue_receiver("sessions-empty") as receiver:
            receiver.receive_messages(max_message_count=1, max_wait_time=2)
    assert not isinstance(raised.value, OperationTimeoutError)
