"""The Python `confluent-kafka` client (librdkafka underneath) against a running `sluice serve`.

Run by tests/clients/run.sh, which starts the broker on a fresh data directory:

    python3 tests/clients/test_confluent.py --bootstrap 127.0.0.1:PORT [unittest args]

Every client call has a deadline, so a broker that stops answering fails a test instead of
hanging CI. The consumer-group test runs only when the broker advertises JoinGroup in
ApiVersions; when it does, a broken group protocol fails loudly. The last line printed is
`confluent-kafka: passed=N failed=N skipped=N`, which run.sh adds to its totals.
"""

import argparse
import socket
import struct
import sys
import time
import unittest
import uuid

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic

# Set from --bootstrap before the tests run.
BOOTSTRAP = "127.0.0.1:9092"
# Longest any single client call (delivery, metadata, admin, commit) may take, in seconds.
CLIENT_TIMEOUT_S = 10.0
# Longest a consumer may take to receive the records a test expects, in seconds.
CONSUME_TIMEOUT_S = 20.0
# Kafka's API key for JoinGroup.
JOIN_GROUP_API_KEY = 11
API_VERSIONS_API_KEY = 18


def unique(name):
    """A topic or group name no other test (or earlier run on the same broker) uses."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


def advertised_api_keys(bootstrap):
    """The API keys the broker lists in an ApiVersions v0 response, over a raw socket.

    Request: size, api_key=18, api_version=0, correlation_id, client_id (int16 length).
    Response (header v0 always): size, correlation_id, error_code, [api_key, min, max].
    """
    host, port = bootstrap.rsplit(":", 1)
    client_id = b"sluice-api-probe"
    correlation_id = 7
    body = struct.pack(">hhih", API_VERSIONS_API_KEY, 0, correlation_id, len(client_id))
    body += client_id
    with socket.create_connection((host, int(port)), timeout=CLIENT_TIMEOUT_S) as sock:
        sock.sendall(struct.pack(">i", len(body)) + body)
        (size,) = struct.unpack(">i", _read_exact(sock, 4))
        if not 0 < size <= 1 << 20:
            raise AssertionError(f"ApiVersions response size {size} out of bounds")
        response = _read_exact(sock, size)
    got_id, error_code, count = struct.unpack_from(">ihi", response, 0)
    if got_id != correlation_id or error_code != 0:
        raise AssertionError(
            f"ApiVersions: correlation id {got_id} (sent {correlation_id}), error {error_code}"
        )
    return {struct.unpack_from(">h", response, 10 + 6 * i)[0] for i in range(count)}


def _read_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise AssertionError("broker closed the connection mid-response")
        data += chunk
    return data


_admin_client = None


def admin():
    """One AdminClient for the whole run: its futures fail if the handle is destroyed first."""
    global _admin_client
    if _admin_client is None:
        _admin_client = AdminClient({"bootstrap.servers": BOOTSTRAP})
    return _admin_client


def create_topic(name, partitions):
    futures = admin().create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1)],
        operation_timeout=CLIENT_TIMEOUT_S,
        request_timeout=CLIENT_TIMEOUT_S,
    )
    futures[name].result(timeout=CLIENT_TIMEOUT_S)


def producer(**extra):
    config = {"bootstrap.servers": BOOTSTRAP, "message.timeout.ms": int(CLIENT_TIMEOUT_S * 1000)}
    config.update(extra)
    return Producer(config)


def consumer(group, **extra):
    config = {
        "bootstrap.servers": BOOTSTRAP,
        "group.id": group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    }
    config.update(extra)
    return Consumer(config)


def produce_all(prod, records):
    """Produces (topic, key, value, timestamp_ms or None) tuples; returns the delivery
    reports as (error, message) pairs once every record has one."""
    reports = []
    for topic, key, value, timestamp_ms in records:
        kwargs = {"timestamp": timestamp_ms} if timestamp_ms is not None else {}
        prod.produce(
            topic,
            key=key,
            value=value,
            on_delivery=lambda err, msg: reports.append((err, msg)),
            **kwargs,
        )
    remaining = prod.flush(CLIENT_TIMEOUT_S)
    if remaining:
        raise AssertionError(f"{remaining} records still undelivered after {CLIENT_TIMEOUT_S}s")
    return reports


def consume_n(cons, n, timeout_s=CONSUME_TIMEOUT_S):
    """Polls until `n` records arrive (more is an error) or the deadline passes."""
    messages = []
    deadline = time.monotonic() + timeout_s
    while len(messages) < n and time.monotonic() < deadline:
        msg = cons.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            if msg.error().code() == KafkaError._PARTITION_EOF:
                continue
            raise AssertionError(f"consumer error: {msg.error()}")
        messages.append(msg)
    if len(messages) != n:
        raise AssertionError(f"received {len(messages)} of {n} records within {timeout_s}s")
    return messages


class ProduceConsume(unittest.TestCase):
    def test_idempotent_acks_all_round_trip(self):
        # Proves an idempotent producer with acks=all gets a successful delivery report for
        # every record (InitProducerId and sequence numbers accepted), and an assign-only
        # consumer from OFFSET_BEGINNING reads each record back in the partition and at the
        # offset its delivery report named, with its key and value intact.
        topic = unique("idempotent")
        create_topic(topic, 3)
        prod = producer(**{"acks": "all", "enable.idempotence": True})
        records = [(topic, f"key-{i % 7}", f"value-{i}", None) for i in range(60)]
        reports = produce_all(prod, records)

        self.assertEqual(len(reports), len(records))
        errors = [str(err) for err, _ in reports if err is not None]
        self.assertEqual(errors, [])
        delivered = {(m.partition(), m.offset()): (m.key(), m.value()) for _, m in reports}
        self.assertEqual(len(delivered), len(records), "two records reported at one offset")
        for partition in range(3):
            offsets = sorted(o for p, o in delivered if p == partition)
            self.assertEqual(offsets, list(range(len(offsets))), f"partition {partition}")
        # One key, one partition: partitioning is the client's, and the broker must keep
        # each record where the client sent it.
        partitions_of_key = {}
        for (partition, _), (key, _) in delivered.items():
            partitions_of_key.setdefault(key, set()).add(partition)
        self.assertTrue(all(len(p) == 1 for p in partitions_of_key.values()), partitions_of_key)

        cons = consumer(unique("reader"))
        try:
            cons.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(3)])
            messages = consume_n(cons, len(records))
        finally:
            cons.close()
        consumed = {(m.partition(), m.offset()): (m.key(), m.value()) for m in messages}
        self.assertEqual(consumed, delivered)

    def test_offsets_for_times(self):
        # Proves ListOffsets by timestamp through offsets_for_times: the first offset whose
        # producer-set timestamp is at or after the one asked for, -1 (end) past the last.
        topic = unique("timed")
        create_topic(topic, 1)
        first_ms = int(time.time() * 1000) - 60_000
        step_ms = 1_000
        records = [(topic, None, f"v{i}", first_ms + i * step_ms) for i in range(10)]
        reports = produce_all(producer(), records)
        self.assertEqual([str(e) for e, _ in reports if e is not None], [])

        cons = consumer(unique("by-time"))
        try:
            cases = [
                (first_ms - 5_000, 0),
                (first_ms, 0),
                (first_ms + 3 * step_ms + 500, 4),
                (first_ms + 9 * step_ms, 9),
                (first_ms + 9 * step_ms + 1, -1),
            ]
            for timestamp_ms, expected in cases:
                (answer,) = cons.offsets_for_times(
                    [TopicPartition(topic, 0, timestamp_ms)], timeout=CLIENT_TIMEOUT_S
                )
                self.assertIsNone(answer.error)
                self.assertEqual(
                    answer.offset, expected, f"{timestamp_ms - first_ms} ms after the first"
                )
            cons.assign([TopicPartition(topic, 0, 4)])
            (msg,) = consume_n(cons, 1)
        finally:
            cons.close()
        self.assertEqual((msg.offset(), msg.value()), (4, b"v4"))
        self.assertEqual(msg.timestamp()[1], first_ms + 4 * step_ms)


class Admin(unittest.TestCase):
    def test_create_list_delete_topics(self):
        # Proves CreateTopics / Metadata / DeleteTopics through AdminClient: the new topic is
        # listed with its partition count, creating it again is TOPIC_ALREADY_EXISTS, and
        # after deletion it is no longer listed.
        topic = unique("admin")
        client = admin()
        create_topic(topic, 4)

        listed = client.list_topics(timeout=CLIENT_TIMEOUT_S).topics
        self.assertIn(topic, listed)
        self.assertIsNone(listed[topic].error)
        self.assertEqual(sorted(listed[topic].partitions), [0, 1, 2, 3])

        again = client.create_topics(
            [NewTopic(topic, num_partitions=1, replication_factor=1)],
            request_timeout=CLIENT_TIMEOUT_S,
        )[topic]
        with self.assertRaises(KafkaException) as raised:
            again.result(timeout=CLIENT_TIMEOUT_S)
        self.assertEqual(raised.exception.args[0].code(), KafkaError.TOPIC_ALREADY_EXISTS)

        deleted = client.delete_topics([topic], operation_timeout=CLIENT_TIMEOUT_S)[topic]
        deleted.result(timeout=CLIENT_TIMEOUT_S)
        # list_topics() without a topic never auto-creates, so this cannot resurrect it.
        self.assertNotIn(topic, client.list_topics(timeout=CLIENT_TIMEOUT_S).topics)


class ConsumerGroup(unittest.TestCase):
    def test_subscribe_commit_resume(self):
        # Proves the group protocol end to end: a subscribing consumer is assigned the
        # partitions, reads, commits and leaves on close; a second consumer in the same group
        # resumes exactly after the commit, neither re-reading nor skipping a record.
        if JOIN_GROUP_API_KEY not in advertised_api_keys(BOOTSTRAP):
            self.skipTest(
                "the broker does not advertise JoinGroup (API key 11) in ApiVersions, "
                "so subscribe() cannot work yet"
            )
        topic = unique("grouped")
        group = unique("billing")
        create_topic(topic, 2)
        records = [(topic, f"k{i}", f"v{i}", None) for i in range(20)]
        self.assertEqual([str(e) for e, _ in produce_all(producer(), records) if e], [])
        settings = {"session.timeout.ms": 10_000, "heartbeat.interval.ms": 1_000}

        first = consumer(group, **settings)
        try:
            first.subscribe([topic])
            read_first = consume_n(first, 8)
            # Commit what was read, per partition: the next offset to read.
            next_offsets = {}
            for m in read_first:
                partition = m.partition()
                next_offsets[partition] = max(next_offsets.get(partition, 0), m.offset() + 1)
            commit = [TopicPartition(topic, p, o) for p, o in next_offsets.items()]
            for tp in first.commit(offsets=commit, asynchronous=False):
                self.assertIsNone(tp.error, f"commit of partition {tp.partition}")
            committed = first.committed(
                [TopicPartition(topic, p) for p in next_offsets], timeout=CLIENT_TIMEOUT_S
            )
            self.assertEqual({(tp.partition, tp.offset) for tp in committed},
                             set(next_offsets.items()))
        finally:
            first.close()

        second = consumer(group, **settings)
        try:
            second.subscribe([topic])
            read_second = consume_n(second, len(records) - len(read_first))
            # Nothing more may arrive: a record read twice would show up here.
            extra = second.poll(1.0)
            self.assertTrue(extra is None or extra.error(), "a record was delivered twice")
        finally:
            second.close()

        first_seen = {(m.partition(), m.offset()) for m in read_first}
        second_seen = {(m.partition(), m.offset()) for m in read_second}
        self.assertEqual(first_seen & second_seen, set(), "re-read after the commit")
        for m in read_second:
            self.assertGreaterEqual(m.offset(), next_offsets.get(m.partition(), 0))
        values = sorted(m.value() for m in read_first + read_second)
        self.assertEqual(values, sorted(f"v{i}".encode() for i in range(20)))


class CountingResult(unittest.TextTestResult):
    """TextTestResult keeps failures and skips but only counts successes into testsRun."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.passed = 0

    def addSuccess(self, test):
        super().addSuccess(test)
        self.passed += 1


def main():
    global BOOTSTRAP
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True, help="HOST:PORT of the broker")
    args, unittest_args = parser.parse_known_args()
    BOOTSTRAP = args.bootstrap

    program = unittest.main(
        argv=[sys.argv[0], "-v", *unittest_args],
        testRunner=unittest.TextTestRunner(
            stream=sys.stdout, resultclass=CountingResult, verbosity=2
        ),
        exit=False,
    )
    result = program.result
    passed = result.passed
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped)
    for test, reason in result.skipped:
        print(f"SKIPPED: {test}: {reason}")
    print(f"confluent-kafka: passed={passed} failed={failed} skipped={skipped}")
    return 1 if failed or result.testsRun == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
