"""AMQP over TLS (`herald serve --amqps-port` with a certificate): the connection string Service Bus
gives (no UseDevelopmentEmulator), so the SDK speaks TLS; `custom_endpoint_address` points it at
the server's TLS port, and `connection_verify` trusts the certificate the harness generated."""

import pytest
from azure.servicebus import ServiceBusClient, ServiceBusMessage, TransportType
from azure.servicebus.exceptions import ServiceBusError

from support import body, receive_exactly


def tls_client(herald, **kwargs) -> ServiceBusClient:
    key = herald.keys["admin"]
    connection_string = f"Endpoint=sb://localhost/;SharedAccessKeyName={key.key_name};SharedAccessKey={key.shared_access_key}"
    return ServiceBusClient.from_connection_string(
        connection_string,
        custom_endpoint_address=f"sb://localhost:{herald.amqps_port}",
        transport_type=TransportType.Amqp,  # with a custom endpoint the SDK picks WebSockets unless told
        retry_total=0,
        **kwargs,
    )


def test_send_and_receive_over_tls(herald):
    assert herald.amqps_port
    with tls_client(herald, connection_verify=str(herald.certificate)) as client:
        with client.get_queue_sender("tls") as sender:
            sender.send_messages(ServiceBusMessage("over tls", application_properties={"n": 1}))
        with client.get_queue_receiver("tls") as receiver:
            [message] = receive_exactly(receiver, 1)
            assert body(message) == b"over tls" and message.application_properties[b"n"] == 1
            receiver.complete_message(message)
    assert herald.counts({"queue": "tls"})["active"] == 0


def test_a_client_that_does_not_trust_the_certificate_is_refused(herald):
    """Without connection_verify the SDK checks the certificate against the system's authorities,
    which never signed the test's: the TLS handshake fails and nothing is sent."""
    with tls_client(herald) as client:
        with pytest.raises(ServiceBusError) as refused:
            with client.get_queue_sender("tls") as sender:
                sender.send_messages(ServiceBusMessage("never"))
    causes = []
    error: BaseException | None = refused.value
    while error is not None and len(causes) < 10:
        causes.append(repr(error))
        error = error.__cause__ or error.__context__
    assert any("CERTIFICATE_VERIFY_FAILED" in cause or "certificate verify failed" in cause for cause in causes), causes
    assert herald.counts({"queue": "tls"})["active"] == 0
