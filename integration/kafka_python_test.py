#!/usr/bin/python3
"""kafka-python against a real runnel process: create topics with the admin
client, produce keyed messages with headers and timestamps, read them back
with a group-less consumer (group_id=None, assign, seek_to_beginning) and
check key, value, headers, timestamp and offset of every record.

Run under Debian's /usr/bin/python3 (python3-kafka). kafka-python here has
only the gzip codec (no snappy/lz4/zstd modules installed).
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from broker import Broker  # noqa: E402
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402
from kafka.admin import NewTopic  # noqa: E402

BASE_TS = 1600000000000


def make_records(n, partitions, tag):
    """(partition, key, value, headers, timestamp_ms) tuples, deterministic."""
    out = []
    for i in range(n):
        key = ("%s-key-%d" % (tag, i)).encode()
        value = None if i % 41 == 5 else ("%s-value-%d-" % (tag, i)).encode() + b"x" * (i % 200)
        headers = [] if i % 3 == 0 else [("idx", str(i).encode()), ("bin", bytes([0, i & 255, 0]))]
        out.append((i % partitions, key, value, headers, BASE_TS + i))
    return out


class KafkaPythonTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.broker = Broker(overrides=["num.partitions=2"])
        cls.broker.start()

    @classmethod
    def tearDownClass(cls):
        cls.broker.close()

    def create_topic(self, name, partitions):
        admin = KafkaAdminClient(bootstrap_servers=self.broker.bootstrap, request_timeout_ms=30000)
        try:
            admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
        finally:
            admin.close()

    def produce(self, topic, records, **config):
        producer = KafkaProducer(bootstrap_servers=self.broker.bootstrap, retries=0, **config)
        futures = [producer.send(topic, key=k, value=v, headers=h, partition=p, timestamp_ms=ts)
                   for (p, k, v, h, ts) in records]
        producer.flush(60)
        metadata = [f.get(timeout=60) for f in futures]
        producer.close(30)
        return metadata

    def consume(self, topic, partitions, count):
        consumer = KafkaConsumer(bootstrap_servers=self.broker.bootstrap, group_id=None,
                                 enable_auto_commit=False, auto_offset_reset="none",
                                 consumer_timeout_ms=60000)
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning()
        got = {p: [] for p in range(partitions)}
        total = 0
        for record in consumer:  # stops after consumer_timeout_ms without records
            got[record.partition].append(record)
            total += 1
            if total == count:
                break
        end = consumer.end_offsets(tps)
        begin = consumer.beginning_offsets(tps)
        consumer.close(autocommit=False)
        return got, begin, end

    def check_round_trip(self, topic, partitions, records, **producer_config):
        metadata = self.produce(topic, records, **producer_config)
        next_offset = [0] * partitions
        for (p, _, _, _, _), md in zip(records, metadata):
            self.assertEqual((md.topic, md.partition, md.offset), (topic, p, next_offset[p]))
            next_offset[p] += 1

        got, begin, end = self.consume(topic, partitions, len(records))
        for p in range(partitions):
            want = [r for r in records if r[0] == p]
            self.assertEqual(len(got[p]), len(want), "partition %d" % p)
            for offset, (w, g) in enumerate(zip(want, got[p])):
                _, key, value, headers, ts = w
                self.assertEqual(
                    (g.offset, g.key, g.value, list(g.headers), g.timestamp, g.timestamp_type),
                    (offset, key, value, headers, ts, 0),
                    "partition %d offset %d" % (p, offset))
            self.assertEqual(begin[TopicPartition(topic, p)], 0)
            self.assertEqual(end[TopicPartition(topic, p)], len(want))

    def test_round_trip_uncompressed_acks_all(self):
        self.create_topic("kp-plain", 3)
        self.check_round_trip("kp-plain", 3, make_records(3000, 3, "plain"), acks="all")

    def test_round_trip_gzip_acks_1(self):
        self.create_topic("kp-gzip", 2)
        self.check_round_trip("kp-gzip", 2, make_records(2000, 2, "gzip"), acks=1,
                              compression_type="gzip", linger_ms=20)

    def test_auto_created_topic_has_default_partitions(self):
        # Sending to an unknown topic creates it with num.partitions (2).
        producer = KafkaProducer(bootstrap_servers=self.broker.bootstrap, acks="all", retries=0)
        md = producer.send("kp-auto", key=b"k", value=b"v", partition=1).get(timeout=60)
        self.assertEqual(producer.partitions_for("kp-auto"), {0, 1})
        producer.close(30)
        self.assertEqual((md.partition, md.offset), (1, 0))
        got, _, end = self.consume("kp-auto", 2, 1)
        self.assertEqual([(r.key, r.value) for r in got[1]], [(b"k", b"v")])
        self.assertEqual(got[0], [])
        self.assertEqual(end[TopicPartition("kp-auto", 0)], 0)
        self.assertEqual(end[TopicPartition("kp-auto", 1)], 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
