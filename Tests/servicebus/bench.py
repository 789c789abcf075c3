"""Throughput of `herald serve` through the Azure Service Bus Python SDK (AMQP 1.0, one connection
per sender or receiver, as the SDK opens them), median of 3 runs:

1. sequential send: 1,000 single messages, one send_messages call (one round trip) each;
2. batched send: 20,000 messages of 256 B in ServiceBusMessageBatch batches of --batch messages;
3. receive-and-complete: the 20,000 in peek-lock, receive_messages(max_message_count=--batch)
   then complete_message each (7.15 waits for the server's echo of every settlement).

Starts its own server on a fresh data folder (loopback, ports picked by the server) with the
binary $HERALD_BINARY, else .build/release/herald:

    swift build -c release --product herald
    python Tests/servicebus/bench.py            # in a venv with Tests/servicebus/requirements.txt
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from herald_server import REPOSITORY, Entity, HeraldServer  # noqa: E402
from azure.servicebus import ServiceBusClient, ServiceBusMessage  # noqa: E402


def sequential_send(client: ServiceBusClient, queue: str, count: int, payload: bytes) -> float:
    with client.get_queue_sender(queue) as sender:
        sender.send_messages(ServiceBusMessage(payload))  # the link is open before timing
        started = time.perf_counter()
        for _ in range(count):
            sender.send_messages(ServiceBusMessage(payload))
        return count / (time.perf_counter() - started)


def batched_send(client: ServiceBusClient, queue: str, count: int, payload: bytes, batch_size: int) -> float:
    with client.get_queue_sender(queue) as sender:
        sender.create_message_batch()  # opens the link before timing
        started = time.perf_counter()
        sent = 0
        while sent < count:
            batch = sender.create_message_batch()
            for _ in range(min(batch_size, count - sent)):
                batch.add_message(ServiceBusMessage(payload))
            sender.send_messages(batch)
            sent += len(batch)
        return count / (time.perf_counter() - started)


def receive_and_complete(client: ServiceBusClient, queue: str, count: int, batch_size: int) -> float:
    with client.get_queue_receiver(queue, prefetch_count=batch_size) as receiver:
        received = 0
        started = None
        while received < count:
            messages = receiver.receive_messages(max_message_count=batch_size, max_wait_time=10)
            if not messages:
                raise RuntimeError(f"received {received} of {count}, then nothing for 10 s")
            if started is None:
                started = time.perf_counter()
            for message in messages:
                receiver.complete_message(message)
            received += len(messages)
        return received / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sequential", type=int, default=1_000)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=100)
    arguments = parser.parse_args()
    if "HERALD_BINARY" not in os.environ:
        os.environ["HERALD_BINARY"] = str(REPOSITORY / ".build" / "release" / "herald")
    payload = b"x" * arguments.size
    entities = [Entity("queue", f"bench-seq-{run}") for run in range(arguments.runs)]
    entities += [Entity("queue", f"bench-{run}") for run in range(arguments.runs)]
    results: dict[str, list[float]] = {"sequential send": [], "batched send": [], "receive-and-complete": []}
    with HeraldServer(entities) as herald:
        print(f"herald: {herald.binary}, azure-servicebus {__import__('azure.servicebus').servicebus.__version__}, Python {sys.version.split()[0]}")
        with ServiceBusClient.from_connection_string(herald.connection_string) as client:
            for run in range(arguments.runs):
                results["sequential send"].append(sequential_send(client, f"bench-seq-{run}", arguments.sequential, payload))
                results["batched send"].append(batched_send(client, f"bench-{run}", arguments.messages, payload, arguments.batch))
                results["receive-and-complete"].append(receive_and_complete(client, f"bench-{run}", arguments.messages, arguments.batch))
                print(f"run {run + 1}: " + ", ".join(f"{name} {values[-1]:,.0f} msgs/s" for name, values in results.items()), flush=True)
            left = herald.counts({"queue": f"bench-{arguments.runs - 1}"})
            assert left["active"] == 0 and left["locked"] == 0, left
    print(f"median of {arguments.runs} runs ({arguments.size} B bodies):")
    print(f"  sequential send of {arguments.sequential:,} single messages: {statistics.median(results['sequential send']):,.0f} msgs/s")
    print(f"  batched send of {arguments.messages:,} in batches of {arguments.batch}: {statistics.median(results['batched send']):,.0f} msgs/s")
    print(f"  receive-and-complete of {arguments.messages:,} (prefetch {arguments.batch}): {statistics.median(results['receive-and-complete']):,.0f} msgs/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
