#!/usr/bin/python3
"""Consumer groups against a real runnel process, with kafka-python's KafkaConsumer
and confluent-kafka's Consumer: join, consume, commit synchronously, close, and a new
member resuming from the committed offset, also across a broker restart (SIGTERM and
SIGKILL); two members sharing a topic; a static member (group.instance.id) replaced by
a new instance; confluent-kafka AdminClient.list_groups (1.7.0 API) and kafka-python's
KafkaAdminClient (ListGroups, DescribeGroups, OffsetFetch of a whole group,
DeleteGroups); __consumer_offsets as Kafka's Metadata shows it: absent from the
all-topics listing, an internal topic with offsets.topic.num.partitions partitions when
named.

The broker runs with group.initial.rebalance.delay.ms=0. Assertions are on content
(values, offsets, assignments), never on timing.

Run under Debian's /usr/bin/python3 (python3-kafka, python3-confluent-kafka).
"""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from broker import Broker  # noqa: E402
from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402
from kafka import KafkaAdminClient, KafkaConsumer  # noqa: E402
from kafka.errors import GroupIdNotFoundError, NoError, NonEmptyGroupError  # noqa: E402
from kafka import TopicPartition as KTopicPartition  # noqa: E402
from kafka.structs import OffsetAndMetadata  # noqa: E402

OVERRIDES = ["group.initial.rebalance.delay.ms=0"]


class ConsumerGroupTest(unittest.TestCase):
    def setUp(self):
        self.broker = Broker(overrides=OVERRIDES)
        self.broker.start()

    def tearDown(self):
        self.broker.close()

    def create_topic(self, name, partitions):
        admin = AdminClient({"bootstrap.servers": self.broker.bootstrap})
        admin.create_topics([NewTopic(name, partitions, 1)], operation_timeout=30)[name].result(60)

    def produce(self, topic, values, partitions):
        p = Producer({"bootstrap.servers": self.broker.bootstrap})
        for i, v in enumerate(values):
            p.produce(topic, v.encode(), partition=i % partitions)
        self.assertEqual(p.flush(30), 0)

    def confluent_consumer(self, group, **extra):
        conf = {"bootstrap.servers": self.broker.bootstrap, "group.id": group,
                "auto.offset.reset": "earliest", "enable.auto.commit": False}
        conf.update(extra)
        return Consumer(conf)

    def consume_confluent(self, consumer, count, deadline_s=60):
        got = []
        end = time.monotonic() + deadline_s
        while len(got) < count and time.monotonic() < end:
            m = consumer.poll(0.5)
            if m is None:
                continue
            self.assertIsNone(m.error(), m.error())
            got.append(m.value().decode())
        return got

    def consume_kafka_python(self, consumer, count, deadline_s=60):
        got = []
        end = time.monotonic() + deadline_s
        while len(got) < count and time.monotonic() < end:
            for records in consumer.poll(timeout_ms=500).values():
                got.extend(r.value.decode() for r in records)
        return got

    def test_confluent_commit_close_resume(self):
        self.create_topic("cg-conf", 3)
        first = ["a%d" % i for i in range(30)]
        self.produce("cg-conf", first, 3)
        c = self.confluent_consumer("g-conf")
        c.subscribe(["cg-conf"])
        self.assertEqual(sorted(self.consume_confluent(c, 30)), sorted(first))
        c.commit(asynchronous=False)
        committed = c.committed([TopicPartition("cg-conf", p) for p in range(3)], timeout=30)
        self.assertEqual([tp.offset for tp in committed], [10, 10, 10])
        c.close()

        second = ["b%d" % i for i in range(12)]
        self.produce("cg-conf", second, 3)
        c2 = self.confluent_consumer("g-conf")
        c2.subscribe(["cg-conf"])
        got = self.consume_confluent(c2, 12)
        self.assertEqual(sorted(got), sorted(second))
        admin = AdminClient({"bootstrap.servers": self.broker.bootstrap})
        self.assertNotIn("__consumer_offsets", admin.list_topics(timeout=30).topics)
        named = admin.list_topics(topic="__consumer_offsets", timeout=30).topics
        self.assertIsNone(named["__consumer_offsets"].error)
        self.assertEqual(len(named["__consumer_offsets"].partitions), 50)
        # Nothing older than the commit comes back.
        self.assertEqual(self.consume_confluent(c2, 1, deadline_s=2), [])
        c2.close()

    def test_kafka_python_commit_and_resume_with_confluent(self):
        self.create_topic("cg-kp", 2)
        values = ["k%d" % i for i in range(20)]
        self.produce("cg-kp", values, 2)
        kc = KafkaConsumer("cg-kp", bootstrap_servers=self.broker.bootstrap, group_id="g-kp",
                           auto_offset_reset="earliest", enable_auto_commit=False,
                           api_version_auto_timeout_ms=30000)
        self.assertEqual(sorted(self.consume_kafka_python(kc, 20)), sorted(values))
        # Commit only up to offset 7 of partition 0 and 4 of partition 1, with metadata.
        kc.commit({KTopicPartition("cg-kp", 0): OffsetAndMetadata(7, "meta-0"),
                   KTopicPartition("cg-kp", 1): OffsetAndMetadata(4, "")})
        self.assertEqual(kc.committed(KTopicPartition("cg-kp", 0)), 7)
        self.assertEqual(kc.committed(KTopicPartition("cg-kp", 1)), 4)
        self.assertEqual(kc.committed(KTopicPartition("cg-kp", 0), metadata=True).metadata,
                         "meta-0")
        kc.close()

        c = self.confluent_consumer("g-kp")
        committed = c.committed([TopicPartition("cg-kp", 0), TopicPartition("cg-kp", 1)],
                                timeout=30)
        self.assertEqual([tp.offset for tp in committed], [7, 4])
        c.subscribe(["cg-kp"])
        got = self.consume_confluent(c, 9)
        # Partition 0 holds k0,k2,...; partition 1 holds k1,k3,...
        expected = ["k%d" % (2 * i) for i in range(7, 10)] + ["k%d" % (2 * i + 1)
                                                               for i in range(4, 10)]
        self.assertEqual(sorted(got), sorted(expected))
        c.close()

    def restart_and_resume(self, hard):
        self.create_topic("cg-restart", 2)
        values = ["r%d" % i for i in range(16)]
        self.produce("cg-restart", values, 2)
        c = self.confluent_consumer("g-restart")
        c.subscribe(["cg-restart"])
        self.assertEqual(sorted(self.consume_confluent(c, 16)), sorted(values))
        c.commit(asynchronous=False)
        c.close()
        if hard:
            self.broker.kill()
        else:
            self.assertEqual(self.broker.stop(), 0)
        self.broker.restart()
        more = ["s%d" % i for i in range(6)]
        self.produce("cg-restart", more, 2)
        c2 = self.confluent_consumer("g-restart")
        committed = c2.committed([TopicPartition("cg-restart", p) for p in range(2)], timeout=30)
        self.assertEqual([tp.offset for tp in committed], [8, 8])
        c2.subscribe(["cg-restart"])
        self.assertEqual(sorted(self.consume_confluent(c2, 6)), sorted(more))
        c2.close()

    def test_commit_survives_clean_restart(self):
        self.restart_and_resume(hard=False)

    def test_commit_survives_sigkill(self):
        self.restart_and_resume(hard=True)

    def test_two_members_split_partitions_and_list_groups(self):
        self.create_topic("cg-two", 4)
        a = self.confluent_consumer("g-two")
        b = self.confluent_consumer("g-two")
        a.subscribe(["cg-two"])
        b.subscribe(["cg-two"])
        end = time.monotonic() + 60
        while time.monotonic() < end:
            a.poll(0.2)
            b.poll(0.2)
            pa = {tp.partition for tp in a.assignment()}
            pb = {tp.partition for tp in b.assignment()}
            if pa and pb and len(pa) + len(pb) == 4:
                break
        self.assertEqual(pa | pb, {0, 1, 2, 3})
        self.assertEqual(pa & pb, set())

        admin = AdminClient({"bootstrap.servers": self.broker.bootstrap})
        groups = [g for g in admin.list_groups(timeout=30) if g.id == "g-two"]
        self.assertEqual(len(groups), 1)
        self.assertEqual(groups[0].state, "Stable")
        self.assertEqual(groups[0].protocol_type, "consumer")
        self.assertEqual(len(groups[0].members), 2)
        a.close()
        b.close()

    def test_kafka_python_admin_describe_offsets_delete(self):
        self.create_topic("cg-admin", 2)
        self.produce("cg-admin", ["d%d" % i for i in range(8)], 2)
        c = self.confluent_consumer("g-admin")
        c.subscribe(["cg-admin"])
        self.assertEqual(len(self.consume_confluent(c, 8)), 8)
        c.commit(asynchronous=False)

        admin = KafkaAdminClient(bootstrap_servers=self.broker.bootstrap,
                                 api_version_auto_timeout_ms=30000)
        self.assertIn(("g-admin", "consumer"), admin.list_consumer_groups())
        desc = admin.describe_consumer_groups(["g-admin"])[0]
        self.assertEqual(desc.group, "g-admin")
        self.assertEqual(desc.state, "Stable")
        self.assertEqual(desc.protocol_type, "consumer")
        self.assertEqual(len(desc.members), 1)
        # The whole group's offsets (OffsetFetch with null topics).
        offsets = admin.list_consumer_group_offsets("g-admin")
        self.assertEqual({tp.partition: om.offset for tp, om in offsets.items()}, {0: 4, 1: 4})
        # A group with members cannot be deleted.
        result = admin.delete_consumer_groups(["g-admin"])
        self.assertIs(dict(result)["g-admin"], NonEmptyGroupError)
        c.close()
        result = admin.delete_consumer_groups(["g-admin", "g-none"])
        self.assertIs(dict(result)["g-admin"], NoError)
        self.assertIs(dict(result)["g-none"], GroupIdNotFoundError)
        self.assertNotIn(("g-admin", "consumer"), admin.list_consumer_groups())
        self.assertEqual(admin.list_consumer_group_offsets("g-admin"), {})
        # Named, __consumer_offsets is described as Kafka's internal topic (never
        # auto-created); it is not in the all-topics listing.
        [topic] = admin.describe_topics(["__consumer_offsets"])
        self.assertEqual(topic["error_code"], 0)
        self.assertTrue(topic["is_internal"])
        self.assertEqual(sorted(p["partition"] for p in topic["partitions"]), list(range(50)))
        self.assertNotIn("__consumer_offsets", admin.list_topics())
        admin.close()

    def test_static_member_rejoins_without_rebalance(self):
        self.create_topic("cg-static", 2)
        a = self.confluent_consumer("g-static", **{"group.instance.id": "inst-a",
                                                   "session.timeout.ms": 30000})
        a.subscribe(["cg-static"])
        end = time.monotonic() + 60
        while not a.assignment() and time.monotonic() < end:
            a.poll(0.2)
        self.assertEqual({tp.partition for tp in a.assignment()}, {0, 1})
        admin = AdminClient({"bootstrap.servers": self.broker.bootstrap})
        before = [g for g in admin.list_groups("g-static", timeout=30)][0]
        self.assertEqual(before.state, "Stable")
        old_member = before.members[0].id
        # Static members do not send LeaveGroup on close; a new instance with the same
        # group.instance.id takes the place of the old member id.
        a.close()
        b = self.confluent_consumer("g-static", **{"group.instance.id": "inst-a",
                                                   "session.timeout.ms": 30000})
        b.subscribe(["cg-static"])
        end = time.monotonic() + 60
        while not b.assignment() and time.monotonic() < end:
            b.poll(0.2)
        self.assertEqual({tp.partition for tp in b.assignment()}, {0, 1})
        after = [g for g in admin.list_groups("g-static", timeout=30)][0]
        self.assertEqual(after.state, "Stable")
        self.assertEqual(len(after.members), 1)
        self.assertNotEqual(after.members[0].id, old_member)
        b.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
