"""Topics and subscriptions (`topic/Subscriptions/sub`): a topic sender, subscription receivers,
Herald's correlation filters (made with `herald subscription create --property/--subject/
--correlation-id`), a subscription's dead-letter queue, scheduling on a topic.

Rule operations go through the SDK's public ServiceBusAdministrationClient, which speaks Service
Bus's administration API over HTTPS (`herald serve --servicebus-admin-port`). The add-rule,
remove-rule and enumerate-rules requests other SDKs send on `$management` have no public API in
the Python SDK; Swift tests cover them through a real listener."""

import datetime

import pytest

from azure.servicebus import ServiceBusMessage, ServiceBusSubQueue
from azure.core.exceptions import HttpResponseError, ResourceExistsError
from azure.servicebus.exceptions import MessageNotFoundError, ServiceBusError
from azure.servicebus.management import CorrelationRuleFilter, SqlRuleFilter, TrueRuleFilter

from support import body, receive_exactly


def test_topic_fans_out_to_subscriptions_by_their_filters(client, herald):
    with client.get_topic_sender("orders") as sender:
        sender.send_messages(
            [
                ServiceBusMessage("red invoice", subject="invoice", application_properties={"color": "red"}),
                ServiceBusMessage("blue order", subject="order", application_properties={"color": "blue"}, correlation_id="order-42"),
                ServiceBusMessage("red order", subject="order", application_properties={"color": "red"}),
            ]
        )
    expected = {
        "all": [b"red invoice", b"blue order", b"red order"],
        "red": [b"red invoice", b"red order"],
        "invoices": [b"red invoice"],
        "correlated": [b"blue order"],
    }
    for subscription, bodies in expected.items():
        assert herald.counts({"topic": "orders", "subscription": subscription})["active"] == len(bodies), subscription
        with client.get_subscription_receiver("orders", subscription) as receiver:
            assert receiver.entity_path == f"orders/Subscriptions/{subscription}"
            messages = receive_exactly(receiver, len(bodies), then_none=True)
            assert [body(m) for m in messages] == bodies, subscription
            for message in messages:
                receiver.complete_message(message)


def test_subscription_settlement_and_dead_letter_queue(client, herald):
    with client.get_topic_sender("events") as sender:
        sender.send_messages([ServiceBusMessage("e1"), ServiceBusMessage("e2"), ServiceBusMessage("e3")])
    with client.get_subscription_receiver("events", "audit") as receiver:
        e1, e2, e3 = receive_exactly(receiver, 3)
        receiver.dead_letter_message(e1, reason="audit-failed", error_description="no audit trail")
        receiver.defer_message(e2)
        receiver.abandon_message(e3)
        [e3_again] = receive_exactly(receiver, 1, timeout=10)
        assert (body(e3_again), e3_again.delivery_count) == (b"e3", 1)
        receiver.complete_message(e3_again)
        [e2_deferred] = receiver.receive_deferred_messages([e2.sequence_number])
        receiver.complete_message(e2_deferred)
        assert receiver.peek_messages(max_message_count=5, sequence_number=1) == []
    with client.get_subscription_receiver("events", "audit", sub_queue=ServiceBusSubQueue.DEAD_LETTER) as dlq:
        [dead] = receive_exactly(dlq, 1)
        assert body(dead) == b"e1"
        assert (dead.dead_letter_reason, dead.dead_letter_error_description) == ("audit-failed", "no audit trail")
        assert dead.dead_letter_source == "events/subscriptions/audit".lower() or dead.dead_letter_source.lower() == "events/subscriptions/audit"
        dlq.complete_message(dead)
    counts = herald.counts({"topic": "events", "subscription": "audit"})
    assert (counts["active"], counts["deferred"], counts["deadLettered"]) == (0, 0, 0)


def test_schedule_and_cancel_on_a_topic(client, herald):
    at = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
    with client.get_topic_sender("schedule-topic") as sender:
        numbers = sender.schedule_messages([ServiceBusMessage("t1"), ServiceBusMessage("t2")], at)
        assert len(numbers) == 2
        assert herald.counts({"topic": "schedule-topic", "subscription": "all"})["scheduled"] == 2
        sender.cancel_scheduled_messages(numbers)
        assert herald.counts({"topic": "schedule-topic", "subscription": "all"})["scheduled"] == 0
        with pytest.raises((MessageNotFoundError, ServiceBusError)):
            sender.cancel_scheduled_messages(numbers[0])  # already cancelled


def test_rules_decide_what_a_subscription_receives(client, admin, herald):
    """Rule operations through the SDK's ServiceBusAdministrationClient: list, delete the $Default
    rule, create a correlation rule, refuse a second rule of the same name and a SQL filter Herald
    cannot evaluate; then only what the new rule matches reaches the subscription."""
    assert [rule.name for rule in admin.list_rules("rules", "managed")] == ["$Default"]
    assert isinstance(admin.get_rule("rules", "managed", "$Default").filter, TrueRuleFilter)
    admin.delete_rule("rules", "managed", "$Default")
    assert list(admin.list_rules("rules", "managed")) == []
    admin.create_rule("rules", "managed", "eu", filter=CorrelationRuleFilter(label="order", properties={"region": "eu"}))
    with pytest.raises(ResourceExistsError):
        admin.create_rule("rules", "managed", "eu", filter=CorrelationRuleFilter(label="other"))
    with pytest.raises(HttpResponseError) as refused:
        admin.create_rule("rules", "managed", "red", filter=SqlRuleFilter("color = 'red'"))
    assert refused.value.status_code == 501
    [rule] = admin.list_rules("rules", "managed")
    assert rule.name == "eu" and isinstance(rule.filter, CorrelationRuleFilter)
    assert (rule.filter.label, rule.filter.properties) == ("order", {"region": "eu"})
    with client.get_topic_sender("rules") as sender:
        sender.send_messages(
            [
                ServiceBusMessage("eu order", subject="order", application_properties={"region": "eu"}),
                ServiceBusMessage("us order", subject="order", application_properties={"region": "us"}),
            ]
        )
    with client.get_subscription_receiver("rules", "managed") as receiver:
        [message] = receive_exactly(receiver, 1, then_none=True)
        assert body(message) == b"eu order"
        receiver.complete_message(message)
