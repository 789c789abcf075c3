"""Service Bus's administration API (`herald serve --servicebus-admin-port`, HTTPS) through the SDK's
public ServiceBusAdministrationClient: entities made, read, listed, changed and deleted with it are
the broker's entities, which the messaging clients then use; what Herald cannot honour is refused
with a status, and tokens are verified."""

import datetime

import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.servicebus import ServiceBusMessage
from azure.servicebus.management import CorrelationRuleFilter, FalseRuleFilter, ServiceBusAdministrationClient

from support import body, receive_exactly


def test_a_queue_made_with_the_administration_client_has_its_settings(client, admin, herald):
    admin.create_queue(
        "admin-made",
        lock_duration=datetime.timedelta(seconds=45),
        max_delivery_count=2,
        default_message_time_to_live=datetime.timedelta(days=1),
        requires_duplicate_detection=True,
        duplicate_detection_history_time_window=datetime.timedelta(minutes=5),
        max_message_size_in_kilobytes=512,
    )
    queue = admin.get_queue("admin-made")
    assert (queue.lock_duration, queue.max_delivery_count, queue.default_message_time_to_live) == (
        datetime.timedelta(seconds=45), 2, datetime.timedelta(days=1))
    assert (queue.requires_duplicate_detection, queue.duplicate_detection_history_time_window) == (True, datetime.timedelta(minutes=5))
    assert (queue.requires_session, queue.max_message_size_in_kilobytes, queue.status) == (False, 512, "Active")
    # The broker holds the same settings: the HTTP API describes the queue the same way.
    status, listing = herald.http("GET", "/v1/queues")
    assert status == 200, listing
    [described] = [entity for entity in listing["items"] if entity["path"] == "admin-made"]
    assert (described["options"]["maxDeliveryCount"], described["options"]["lockDurationMs"]) == (2, 45000)
    # Messaging clients use it at once; duplicate detection is on.
    with client.get_queue_sender("admin-made") as sender:
        sender.send_messages(ServiceBusMessage("one", message_id="m-1"))
        sender.send_messages(ServiceBusMessage("one again", message_id="m-1"))
    runtime = admin.get_queue_runtime_properties("admin-made")
    assert (runtime.active_message_count, runtime.total_message_count) == (1, 1)
    with client.get_queue_receiver("admin-made") as receiver:
        [message] = receive_exactly(receiver, 1, then_none=True)
        assert body(message) == b"one"
        receiver.complete_message(message)
    with pytest.raises(ResourceExistsError):
        admin.create_queue("admin-made")


def test_update_list_and_delete(admin):
    admin.create_queue("admin-updated")
    queue = admin.get_queue("admin-updated")
    assert queue.max_delivery_count == 10 and queue.default_message_time_to_live > datetime.timedelta(days=3650)
    queue.max_delivery_count = 7
    queue.lock_duration = datetime.timedelta(seconds=20)
    admin.update_queue(queue)
    updated = admin.get_queue("admin-updated")
    assert (updated.max_delivery_count, updated.lock_duration) == (7, datetime.timedelta(seconds=20))
    assert "admin-updated" in [queue.name for queue in admin.list_queues()]
    admin.delete_queue("admin-updated")
    assert "admin-updated" not in [queue.name for queue in admin.list_queues()]
    with pytest.raises(ResourceNotFoundError):
        admin.get_queue("admin-updated")
    with pytest.raises(ResourceNotFoundError):
        admin.delete_queue("admin-updated")


def test_a_topic_and_subscriptions_made_with_the_administration_client(client, admin):
    admin.create_topic("admin-topic", default_message_time_to_live=datetime.timedelta(hours=1))
    admin.create_subscription("admin-topic", "everything", max_delivery_count=4)
    admin.create_subscription("admin-topic", "nothing")
    admin.delete_rule("admin-topic", "nothing", "$Default")
    admin.create_rule("admin-topic", "nothing", "never", filter=FalseRuleFilter())
    admin.create_subscription("admin-topic", "tagged")
    admin.delete_rule("admin-topic", "tagged", "$Default")
    admin.create_rule("admin-topic", "tagged", "tag", filter=CorrelationRuleFilter(correlation_id="c-7", properties={"n": 7, "ok": True}))
    topic = admin.get_topic("admin-topic")
    assert topic.default_message_time_to_live == datetime.timedelta(hours=1)
    assert admin.get_topic_runtime_properties("admin-topic").subscription_count == 3
    assert sorted(subscription.name for subscription in admin.list_subscriptions("admin-topic")) == ["everything", "nothing", "tagged"]
    assert admin.get_subscription("admin-topic", "everything").max_delivery_count == 4
    tag = admin.get_rule("admin-topic", "tagged", "tag")
    assert (tag.filter.correlation_id, tag.filter.properties) == ("c-7", {"n": 7, "ok": True})
    with client.get_topic_sender("admin-topic") as sender:
        sender.send_messages([ServiceBusMessage("plain"), ServiceBusMessage("tagged", correlation_id="c-7", application_properties={"n": 7, "ok": True})])
    assert admin.get_subscription_runtime_properties("admin-topic", "everything").active_message_count == 2
    assert admin.get_subscription_runtime_properties("admin-topic", "nothing").active_message_count == 0
    with client.get_subscription_receiver("admin-topic", "tagged") as receiver:
        [message] = receive_exactly(receiver, 1, then_none=True)
        assert body(message) == b"tagged"
        receiver.complete_message(message)
    admin.delete_subscription("admin-topic", "nothing")
    admin.delete_topic("admin-topic")
    assert "admin-topic" not in [topic.name for topic in admin.list_topics()]


def test_what_herald_cannot_honour_is_refused(admin):
    with pytest.raises(HttpResponseError) as refused:
        admin.create_queue("admin-forwarding", forward_to="elsewhere")
    assert refused.value.status_code == 501
    with pytest.raises(HttpResponseError) as refused:
        admin.create_queue("admin-partitioned", enable_partitioning=True)
    assert refused.value.status_code == 501
    with pytest.raises(HttpResponseError) as refused:
        admin.create_queue("admin-bad-lock", lock_duration=datetime.timedelta(minutes=10))
    assert refused.value.status_code == 400
    admin.create_topic("admin-rules-topic")
    admin.create_subscription("admin-rules-topic", "s")
    rule = admin.get_rule("admin-rules-topic", "s", "$Default")
    with pytest.raises(HttpResponseError) as refused:
        admin.update_rule("admin-rules-topic", "s", rule)
    assert refused.value.status_code == 501
    assert [queue.name for queue in admin.list_queues() if queue.name.startswith("admin-") and queue.name != "admin-made"] == []
    admin.delete_topic("admin-rules-topic")


def test_the_namespace(admin):
    namespace = admin.get_namespace_properties()
    assert namespace.name.startswith("localhost:") and namespace.namespace_type == "Messaging"


def test_tokens_are_verified(herald):
    key = herald.keys["admin"]
    forged = f"Endpoint=sb://localhost:{herald.admin_port};SharedAccessKeyName={key.key_name};SharedAccessKey=forged-secret"
    with ServiceBusAdministrationClient.from_connection_string(forged, connection_verify=str(herald.certificate), retry_total=0) as admin:
        with pytest.raises(ClientAuthenticationError):
            admin.get_namespace_properties()
    # A key without the manage right is refused too (403).
    with ServiceBusAdministrationClient.from_connection_string(
        herald.admin_connection_string("sender"), connection_verify=str(herald.certificate), retry_total=0
    ) as admin:
        with pytest.raises(HttpResponseError) as refused:
            admin.create_queue("admin-by-sender")
        assert refused.value.status_code == 403
