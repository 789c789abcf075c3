"""Runs the Azure Service Bus SDK's own connection-string samples, unchanged, against a real
`herald serve`.

    python run_samples.py SAMPLES_DIR

SAMPLES_DIR is `samples/sync_samples` of an azure-servicebus source distribution from PyPI (the
runner, .ci/servicebus-tests, extracts it; the samples' code is not kept in this repository). The
samples of 7.13 and later authenticate with DefaultAzureCredential (Entra ID over TLS) only; 7.12.2
is the last release whose samples use `ServiceBusClient.from_connection_string` with
SERVICEBUS_CONNECTION_STR, so the runner takes the samples from that release and runs them with the
pinned SDK (requirements.txt).

Each sample runs in its own process with only the connection string and entity names in its
environment (the administration samples also REQUESTS_CA_BUNDLE, to trust the test's certificate
as an application trusts a private CA), bounded in time; it passes when it exits 0, prints what it should, and leaves the
entities as it should (counts read over the HTTP API). HERALD_SERVICEBUS_SKIP_SESSIONS=1 skips
the session samples. Exits 1 when any sample fails.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
from herald_server import Entity, HeraldServer, entity_of  # noqa: E402

ENTITIES = [
    Entity("queue", "samples-queue"),
    Entity("queue", "samples-deferred"),
    Entity("queue", "samples-dead-letter"),
    Entity("queue", "samples-correct"),
    Entity("queue", "samples-schedule"),
    Entity("topic", "samples-topic"),
    Entity("subscription", "samples-sub", topic="samples-topic"),
    Entity("topic", "samples-schedule-topic"),
    Entity("subscription", "samples-sub", topic="samples-schedule-topic"),
    Entity("queue", "samples-session-queue", {"requires-session": True}),
    Entity("queue", "samples-session-pool", {"requires-session": True}),
    Entity("topic", "samples-admin-topic"),
]


@dataclass
class Sample:
    file: str
    environment: dict[str, str]
    output: list[str] = field(default_factory=list)  # regexes stdout must match
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # entity -> counts it must have after
    check: Callable[[str, HeraldServer], str | None] | None = None  # extra check: an error text or None
    sessions: bool = False
    timeout: float = 120
    # Administration samples get the connection string of the administration API (HTTPS) and trust
    # the harness's certificate through REQUESTS_CA_BUNDLE, as an application trusts a private CA.
    administration: bool = False


def received_count(text: str, prefix: str) -> int:
    return sum(1 for line in text.splitlines() if line.startswith(prefix))


def check_receive_queue(stdout: str, herald: HeraldServer) -> str | None:
    # send_queue sent 21 messages; receive_queue completes those it got (up to 10) and prints each
    got = received_count(stdout, "Single Message") + received_count(stdout, "Message in list") + received_count(stdout, "Message inside")
    active = herald.counts(entity_of("samples-queue"))["active"]
    if not 1 <= got <= 10 or active != 21 - got:
        return f"receive_queue printed {got} messages and left {active} of 21 active"
    return None


SAMPLES = [
    Sample("authenticate_client_connstr.py", {}),
    Sample("send_queue.py", {"SERVICEBUS_QUEUE_NAME": "samples-queue"}, ["Send message is done."], {"samples-queue": {"active": 21}}),
    Sample(
        "receive_peek.py",
        {"SERVICEBUS_QUEUE_NAME": "samples-queue"},
        [r"^Single Message$", r"^Message in list$", "Receive is done."],
        {"samples-queue": {"active": 21, "locked": 0}},
    ),
    Sample("receive_queue.py", {"SERVICEBUS_QUEUE_NAME": "samples-queue"}, ["Receive is done."], {"samples-queue": {"locked": 0}}, check_receive_queue),
    Sample("send_topic.py", {"SERVICEBUS_TOPIC_NAME": "samples-topic"}, ["Send message is done."], {"samples-topic/Subscriptions/samples-sub": {"active": 21}}),
    Sample(
        "receive_subscription.py",
        {"SERVICEBUS_TOPIC_NAME": "samples-topic", "SERVICEBUS_SUBSCRIPTION_NAME": "samples-sub"},
        [r"^Single Message$", "Receive is done."],
        {"samples-topic/Subscriptions/samples-sub": {"active": 11, "locked": 0}},
    ),
    Sample(
        "receive_deferred_message_queue.py",
        {"SERVICEBUS_QUEUE_NAME": "samples-deferred"},
        ["Deferring msg: Message to be deferred", "Completing deferred msg: Message to be deferred", "Receive is done."],
        {"samples-deferred": {"active": 0, "deferred": 0, "locked": 0}},
    ),
    Sample(
        "receive_deadlettered_messages.py",
        {"SERVICEBUS_QUEUE_NAME": "samples-dead-letter"},
        ["dead lettering messages", "receiving deadlettered messages", "Receive is done."],
        {"samples-dead-letter": {"active": 0, "deadLettered": 0, "locked": 0}},
        lambda out, _: None if out.count("Message to be deadlettered") == 20 else f"expected 10 messages dead-lettered and 10 received from the dead-letter queue, printed {out.count('Message to be deadlettered')}",
    ),
    Sample(
        "deadletter_messages_and_correct.py",
        {"SERVICEBUS_QUEUE_NAME": "samples-correct"},
        ["Message delivery_count: 9", "Deadletter message:", "Fixing message", "Resending fixed messages", "Received fixed message"],
        {"samples-correct": {"active": 0, "deadLettered": 0, "locked": 0}},
        lambda out, _: None if received_count(out, "Received fixed message") == 5 else f"expected 5 fixed messages, printed {received_count(out, 'Received fixed message')}",
    ),
    Sample(
        "schedule_messages_and_cancellation.py",
        {"SERVICEBUS_QUEUE_NAME": "samples-schedule"},
        [r"Single message is scheduled and sequence number is \[\d+\]", r"Multiple messages are scheduled and sequence numbers are \[\d+(, \d+){9}\]", "All scheduled messages are cancelled."],
        {"samples-schedule": {"scheduled": 0, "active": 0}},
    ),
    Sample(
        "schedule_topic_messages_and_cancellation.py",
        {"SERVICEBUS_TOPIC_NAME": "samples-schedule-topic"},
        [r"Single message is scheduled and sequence number is \[\d+\]", r"Multiple messages are scheduled and sequence numbers are \[\d+(, \d+){9}\]", "All scheduled messages are cancelled."],
        {"samples-schedule-topic/Subscriptions/samples-sub": {"scheduled": 0, "active": 0}},
    ),
    Sample("mgmt_queue.py", {}, ["-- Create Queue", "-- List Queues", "-- Get and Update Queue", "Active Message Count: 0", r"Queue sb_mgmt_queue\S+ is deleted\."], administration=True),
    Sample("mgmt_topic.py", {}, ["-- Create Topic", "-- List Topics", "-- Get and Update Topic", r"Topic sb_mgmt_topic\S+ is deleted\."], administration=True),
    Sample(
        "mgmt_subscription.py",
        {"SERVICEBUS_TOPIC_NAME": "samples-admin-topic"},
        ["-- Create Subscription", "-- List Subscriptions", "-- Get and Update Subscription", r"Subscription sb_mgmt_sub\S+ is deleted\."],
        administration=True,
    ),
    Sample(
        "session_send_receive.py",
        {"SERVICEBUS_SESSION_QUEUE_NAME": "samples-session-queue", "SERVICEBUS_SESSION_ID": "sample-session"},
        ["Send message is done.", "Session state: b'START'", "Session state: b'END'", "Receive is done."],
        {"samples-session-queue": {"locked": 0}},
        sessions=True,
    ),
    Sample(
        "session_pool_receive.py",
        {"SERVICEBUS_SESSION_QUEUE_NAME": "samples-session-pool"},
        [r"Received total 200 messages across 10 sessions\."],
        {"samples-session-pool": {"active": 0, "locked": 0}},
        sessions=True,
        timeout=180,
    ),
]

# Connection-string samples this runner does not run, and why.
NOT_RUN = {
    "receive_iterator_queue.py": "iterates the receiver without max_wait_time: it never ends by design",
    "auto_lock_renew.py": "sleeps 100 s three times (about 5 minutes)",
    "send_and_receive_amqp_annotated_message.py": "sends amqp-sequence and amqp-value bodies; Herald stores data bodies only and refuses the others",
    "failure_and_recovery.py": "iterates the receiver without max_wait_time: it never ends by design",
    "connection_to_custom_endpoint_address.py": "needs a custom endpoint (a proxy host) by design",
    "proxy.py": "needs an HTTP proxy",
    "sample_code_servicebus.py": "documentation snippets, mostly with Entra ID credentials",
    "topic_subscription_with_rule_operations.py": "one connection string for AMQP and the administration API: Service Bus's fixed ports (5671, 443), which a test does not take",
    "mgmt_rule.py": "creates SQL filters with parameters and SQL rule actions, which Herald refuses (correlation filters, 1=1 and 1=0 only)",
}


def run(samples_dir: Path) -> int:
    skip_sessions = os.environ.get("HERALD_SERVICEBUS_SKIP_SESSIONS") == "1"
    failures: list[str] = []
    passed = skipped = 0
    with HeraldServer(ENTITIES, keep=os.environ.get("HERALD_SERVICEBUS_KEEP") == "1", tls=True) as herald:
        for sample in SAMPLES:
            path = samples_dir / sample.file
            if sample.sessions and skip_sessions:
                print(f"samples: SKIP {sample.file} (HERALD_SERVICEBUS_SKIP_SESSIONS=1)", flush=True)
                skipped += 1
                continue
            if not path.is_file():
                failures.append(f"{sample.file}: not in {samples_dir}")
                continue
            environment = {
                "PATH": os.environ.get("PATH", ""),
                "HOME": os.environ.get("HOME", "/tmp"),
                "SERVICEBUS_CONNECTION_STR": herald.admin_connection_string() if sample.administration else herald.connection_string,
                **({"REQUESTS_CA_BUNDLE": str(herald.certificate)} if sample.administration else {}),
                **sample.environment,
            }
            started = time.monotonic()
            try:
                # Samples print what they receive, which can be bytes that are not UTF-8.
                result = subprocess.run(
                    [sys.executable, str(path)],
                    cwd=str(samples_dir),
                    env=environment,
                    capture_output=True,
                    encoding="utf-8",
                    errors="replace",
                    timeout=sample.timeout,
                )
                stdout, stderr, code = result.stdout, result.stderr, result.returncode
            except subprocess.TimeoutExpired as timeout:
                stdout = (timeout.stdout or b"").decode(errors="replace") if isinstance(timeout.stdout, bytes) else (timeout.stdout or "")
                stderr = (timeout.stderr or b"").decode(errors="replace") if isinstance(timeout.stderr, bytes) else (timeout.stderr or "")
                code = f"timeout after {sample.timeout} s"
            elapsed = time.monotonic() - started
            problems = []
            if code != 0:
                problems.append(f"exit {code}")
            for pattern in sample.output:
                if not re.search(pattern, stdout, re.M):
                    problems.append(f"stdout lacks /{pattern}/")
            for name, expected in sample.counts.items():
                counts = herald.counts(entity_of(name))
                wrong = {k: counts[k] for k, v in expected.items() if counts[k] != v}
                if wrong:
                    problems.append(f"{name} counts {wrong}, expected {expected}")
            if sample.check and not problems:
                error = sample.check(stdout, herald)
                if error:
                    problems.append(error)
            if problems:
                failures.append(f"{sample.file}: {'; '.join(problems)}")
                print(f"samples: FAIL {sample.file} ({elapsed:.1f} s): {'; '.join(problems)}", flush=True)
                print("---- stdout (tail) ----\n" + "\n".join(stdout.splitlines()[-25:]), flush=True)
                print("---- stderr (tail) ----\n" + "\n".join(stderr.splitlines()[-25:]), flush=True)
                print("---- herald serve log (tail) ----\n" + "\n".join(herald.log().splitlines()[-25:]), flush=True)
            else:
                passed += 1
                print(f"samples: PASS {sample.file} ({elapsed:.1f} s)", flush=True)
    for name, reason in NOT_RUN.items():
        print(f"samples: not run: {name}: {reason}")
    print(f"samples: {passed} passed, {len(failures)} failed, {skipped} skipped")
    for failure in failures:
        print(f"samples: FAILED {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(run(Path(sys.argv[1])))
