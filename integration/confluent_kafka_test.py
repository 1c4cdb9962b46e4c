#!/usr/bin/python3
"""confluent-kafka (1.7.0 on librdkafka 2.0.2) against a real runnel process:
create topics with AdminClient, produce keyed messages with headers and
timestamps with every codec, read them back with assign() and check every
record's key, value, headers, timestamp and offset.

The Consumer needs a group.id; with assign() and enable.auto.commit=false it
fetches without joining a group, but librdkafka still sends FindCoordinator
for that group (seen against librdkafka's mock cluster). No offsets are
fetched or committed.

Run under Debian's /usr/bin/python3 (python3-confluent-kafka).
"""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from broker import Broker  # noqa: E402
from confluent_kafka import (OFFSET_BEGINNING, TIMESTAMP_CREATE_TIME, Consumer,  # noqa: E402
                             KafkaError, Producer, TopicPartition)
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic  # noqa: E402

BASE_TS = 1600000000000


def make_records(n, partitions, tag):
    """(partition, key, value, headers, timestamp_ms) tuples, deterministic."""
    out = []
    for i in range(n):
        key = ("%s-key-%d" % (tag, i)).encode()
        value = None if i % 37 == 2 else ("%s-value-%d-" % (tag, i)).encode() + b"y" * (i % 300)
        # No None header values: confluent-kafka 1.7.0 under-counts references
        # to None for them on consume and crashes the interpreter (the C++
        # tests cover null header values).
        headers = [] if i % 2 == 0 else [("idx", str(i).encode()), ("bin", bytes([i & 255, 0]))]
        out.append((i % partitions, key, value, headers, BASE_TS + 7 * i))
    return out


class ConfluentKafkaTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.broker = Broker()
        cls.broker.start()
        cls.admin = AdminClient({"bootstrap.servers": cls.broker.bootstrap})

    @classmethod
    def tearDownClass(cls):
        cls.broker.close()

    def create_topic(self, name, partitions):
        futures = self.admin.create_topics([NewTopic(name, partitions, 1)], operation_timeout=30)
        futures[name].result(60)
        md = self.admin.list_topics(name, timeout=30)
        self.assertEqual(sorted(md.topics[name].partitions), list(range(partitions)))

    def produce(self, topic, records, **config):
        conf = {"bootstrap.servers": self.broker.bootstrap, "message.send.max.retries": 0,
                "linger.ms": 5}
        conf.update(config)
        producer = Producer(conf)
        reports = [None] * len(records)

        def report(i):
            def cb(err, msg):
                reports[i] = (err, msg.partition(), msg.offset())
            return cb

        for i, (p, key, value, headers, ts) in enumerate(records):
            while True:
                try:
                    producer.produce(topic, key=key, value=value, headers=headers, partition=p,
                                     timestamp=ts, on_delivery=report(i))
                    break
                except BufferError:
                    producer.poll(0.1)
            producer.poll(0)
        self.assertEqual(producer.flush(60), 0)
        return reports

    def consume(self, topic, partitions, count):
        consumer = Consumer({"bootstrap.servers": self.broker.bootstrap,
                             "group.id": "runnel-integration",
                             "enable.auto.commit": False,
                             "enable.auto.offset.store": False,
                             "auto.offset.reset": "error"})
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        got = {p: [] for p in range(partitions)}
        deadline = time.monotonic() + 60
        total = 0
        while total < count and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            self.assertIsNone(msg.error(), msg.error())
            got[msg.partition()].append(msg)
            total += 1
        marks = [consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                 for p in range(partitions)]
        consumer.close()
        return got, marks

    def check_round_trip(self, topic, partitions, records, **producer_config):
        reports = self.produce(topic, records, **producer_config)
        next_offset = [0] * partitions
        for (p, _, _, _, _), (err, part, offset) in zip(records, reports):
            self.assertIsNone(err)
            self.assertEqual((part, offset), (p, next_offset[p]))
            next_offset[p] += 1

        got, marks = self.consume(topic, partitions, len(records))
        for p in range(partitions):
            want = [r for r in records if r[0] == p]
            self.assertEqual(len(got[p]), len(want), "partition %d" % p)
            for offset, (w, g) in enumerate(zip(want, got[p])):
                _, key, value, headers, ts = w
                self.assertEqual(
                    (g.offset(), g.key(), g.value(), g.headers() or [], g.timestamp()),
                    (offset, key, value, headers, (TIMESTAMP_CREATE_TIME, ts)),
                    "partition %d offset %d" % (p, offset))
            self.assertEqual(marks[p], (0, len(want)))

    def test_round_trip_every_codec(self):
        for codec in ("none", "gzip", "snappy", "lz4", "zstd"):
            with self.subTest(codec=codec):
                topic = "ck-" + codec
                self.create_topic(topic, 3)
                self.check_round_trip(topic, 3, make_records(5000, 3, codec),
                                      **{"compression.type": codec, "acks": "all"})

    def test_create_existing_topic_fails(self):
        self.create_topic("ck-exists", 1)
        futures = self.admin.create_topics([NewTopic("ck-exists", 1, 1)], operation_timeout=30)
        with self.assertRaises(Exception) as ctx:
            futures["ck-exists"].result(60)
        self.assertEqual(ctx.exception.args[0].code(), KafkaError.TOPIC_ALREADY_EXISTS)

    def test_create_partitions_then_produce_to_new_partition(self):
        self.create_topic("ck-grow", 1)
        futures = self.admin.create_partitions([NewPartitions("ck-grow", 3)],
                                               operation_timeout=30)
        futures["ck-grow"].result(60)
        md = self.admin.list_topics("ck-grow", timeout=30)
        self.assertEqual(sorted(md.topics["ck-grow"].partitions), [0, 1, 2])
        self.check_round_trip("ck-grow", 3, make_records(300, 3, "grow"), acks="1")

    def test_delete_topic(self):
        self.create_topic("ck-delete", 2)
        futures = self.admin.delete_topics(["ck-delete"], operation_timeout=30)
        self.assertIsNone(futures["ck-delete"].result(60))
        md = self.admin.list_topics(timeout=30)
        self.assertNotIn("ck-delete", md.topics)


if __name__ == "__main__":
    unittest.main(verbosity=2)
