#!/usr/bin/python3
"""An idempotent producer (confluent-kafka on librdkafka, enable.idempotence=true) across
broker restarts mid-stream: no duplicates, no gaps.

The broker listens on a fixed port so that the running producer finds it again. The
producer sends a numbered stream to 3 partitions (number i of partition p is the value
"i") in bursts, never more than MAX_OUTSTANDING unacknowledged. Once a third of the
stream is acknowledged the broker is stopped with SIGTERM and started again; at two thirds it is
SIGSTOPped until the producer's requests time out (the producer disconnects and will
retry them after reconnect.backoff.ms), SIGCONTed so that it appends the requests it had
received, answering no one, and SIGKILLed before the producer is back; then started
again. The producer keeps producing and retrying throughout, so the restarted broker
must recognise the retries of batches already in its log from the state it rebuilt
(snapshot and replay). Then:
  * every delivery report is a success and the producer reported no fatal error;
  * per partition, the reported offsets are exactly 0..n-1, one per number, in order;
  * a consumer reading each partition from the beginning finds 0..n-1 at offsets
    0..n-1: every number exactly once, in order, nothing else.
Runs under /usr/bin/python3 with RUNNEL_BIN set.
"""

import os
import signal
import socket
import sys
import time
import unittest

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from broker import Broker  # noqa: E402

PARTITIONS = 3
PER_PARTITION = 20000
MAX_OUTSTANDING = 3000
BURST = 600
REQUEST_TIMEOUT_S = 0.5
TOPIC = "idempotent-stream"


def first_difference(got, want):
    """None if the lists are equal, else where they first differ (unittest's diff of two
    long lists takes minutes)."""
    for k, (g, w) in enumerate(zip(got, want)):
        if g != w:
            return "at index %d: got %r, want %r (%d got, %d wanted)" % (
                k, g, w, len(got), len(want))
    if len(got) > len(want):
        return "%d got, %d wanted; the first extra: %r" % (len(got), len(want), got[len(want)])
    if len(got) < len(want):
        return "%d got, %d wanted; the first missing: %r" % (len(got), len(want), want[len(got)])
    return None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class IdempotentProducerTest(unittest.TestCase):
    def setUp(self):
        self.port = free_port()
        self.broker = Broker(overrides=["listeners=PLAINTEXT://127.0.0.1:%d" % self.port])
        self.broker.start()

    def tearDown(self):
        self.broker.close()

    def restart(self, how, producer):
        if how == "SIGTERM":
            self.assertEqual(self.broker.stop(), 0, self.broker.output())
        else:
            pid = self.broker.proc.pid
            os.kill(pid, signal.SIGSTOP)
            # librdkafka scans for timed-out requests once a second.
            self.poll_for(producer, REQUEST_TIMEOUT_S + 1.1)
            os.kill(pid, signal.SIGCONT)
            self.poll_for(producer, 0.2)
            self.broker.kill()
        self.broker.start()
        self.assertEqual(self.broker.port, self.port)

    @staticmethod
    def poll_for(producer, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            producer.poll(0.01)

    def read_partition(self, p, want):
        consumer = Consumer({"bootstrap.servers": self.broker.bootstrap,
                             "group.id": "idempotent-check-%d" % p,
                             "enable.auto.commit": False,
                             "enable.partition.eof": True,
                             "check.crcs": True})
        consumer.assign([TopicPartition(TOPIC, p, 0)])
        got = []
        deadline = time.monotonic() + 60
        try:
            while time.monotonic() < deadline:
                msg = consumer.poll(1.0)
                if msg is None:
                    continue
                if msg.error():
                    if msg.error().code() == KafkaError._PARTITION_EOF and len(got) >= want:
                        break
                    if msg.error().code() != KafkaError._PARTITION_EOF:
                        self.fail("consumer error on partition %d: %s" % (p, msg.error()))
                    continue
                got.append((msg.offset(), int(msg.value())))
        finally:
            consumer.close()
        return got

    def test_numbered_stream_across_sigterm_and_sigkill(self):
        admin = AdminClient({"bootstrap.servers": self.broker.bootstrap})
        for _, f in admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1)]).items():
            f.result(30)
        del admin

        fatal = []
        failed = []
        delivered = {p: [] for p in range(PARTITIONS)}

        def on_error(err):
            if err.fatal():
                fatal.append(err)

        def on_delivery(err, msg):
            if err is not None:
                failed.append((msg.partition(), msg.value(), err))
            else:
                delivered[msg.partition()].append((msg.offset(), int(msg.value())))

        producer = Producer({
            "bootstrap.servers": self.broker.bootstrap,
            "enable.idempotence": True,
            "linger.ms": 2,
            "batch.num.messages": 100,  # many small batches, several in flight
            "message.timeout.ms": 120000,
            "request.timeout.ms": int(REQUEST_TIMEOUT_S * 1000),
            "socket.timeout.ms": int(REQUEST_TIMEOUT_S * 1000),
            "retry.backoff.ms": 20,
            # Back (at the earliest: 75% of it, librdkafka's jitter) only once the broker
            # that was SIGSTOPped is gone.
            "reconnect.backoff.ms": 2500,
            "reconnect.backoff.max.ms": 2500,
            "error_cb": on_error,
        })
        total = PARTITIONS * PER_PARTITION
        # Restarts once a third and two thirds of the stream are acknowledged, with up to
        # MAX_OUTSTANDING more queued or in flight: the broker goes down mid-stream.
        restarts = [(total // 3, "SIGTERM"), (2 * total // 3, "SIGKILL")]
        outstanding_at_restart = []
        for n in range(total):
            p, i = n % PARTITIONS, n // PARTITIONS
            while True:
                try:
                    producer.produce(TOPIC, value=str(i).encode(), partition=p,
                                     on_delivery=on_delivery)
                    break
                except BufferError:
                    producer.poll(0.05)
            if n % BURST != BURST - 1:
                continue
            # A burst is queued and on its way out (linger.ms): the moment to restart.
            acknowledged = sum(len(d) for d in delivered.values())
            if restarts and acknowledged >= restarts[0][0]:
                outstanding_at_restart.append(len(producer))
                self.restart(restarts.pop(0)[1], producer)
            producer.poll(0.005)
            while len(producer) > MAX_OUTSTANDING:
                producer.poll(0.005)
        self.assertEqual(restarts, [], "the stream ended before both restarts")
        self.assertTrue(all(outstanding_at_restart), outstanding_at_restart)
        self.assertEqual(producer.flush(120), 0, "messages left undelivered")
        self.assertEqual(fatal, [], "the idempotent producer hit a fatal error")
        self.assertEqual(failed[:5], [], "%d deliveries failed" % len(failed))

        # (offset, number): number i at offset i, each once.
        expected = [(i, i) for i in range(PER_PARTITION)]
        for p in range(PARTITIONS):
            reports = sorted(delivered[p], key=lambda d: d[1])
            self.assertIsNone(first_difference(reports, expected),
                              "delivery reports of partition %d" % p)
        for p in range(PARTITIONS):
            got = self.read_partition(p, PER_PARTITION)
            self.assertIsNone(first_difference(got, expected), "log of partition %d" % p)


if __name__ == "__main__":
    unittest.main(verbosity=2)
