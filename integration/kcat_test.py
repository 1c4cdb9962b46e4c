#!/usr/bin/python3
"""kcat against a real runnel process: metadata listing (-L) shows the broker
at its advertised address and the topics with their partition counts; what
kcat -P produces, kcat -C reads back exactly, at offsets 0..n-1.

Topics are created with confluent-kafka's AdminClient, since kcat cannot.
Run under Debian's /usr/bin/python3.
"""

import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from broker import Broker  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402


def kcat(*args, stdin=None):
    result = subprocess.run(["kcat", *args], input=stdin, capture_output=True, timeout=120)
    if result.returncode != 0:
        raise AssertionError("kcat %s exited %d: %s" % (" ".join(args), result.returncode,
                                                         result.stderr.decode(errors="replace")))
    return result.stdout.decode()


class KcatTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.broker = Broker()
        cls.broker.start()
        admin = AdminClient({"bootstrap.servers": cls.broker.bootstrap})
        topics = [NewTopic("kc-three", 3, 1), NewTopic("kc-one", 1, 1), NewTopic("kc-five", 5, 1)]
        for future in admin.create_topics(topics, operation_timeout=30).values():
            future.result(60)

    @classmethod
    def tearDownClass(cls):
        cls.broker.close()

    def test_metadata_listing(self):
        out = kcat("-b", self.broker.bootstrap, "-L")
        self.assertIn("broker 1 at %s" % self.broker.bootstrap, out)
        self.assertRegex(out, r"\b1 brokers:")
        for topic, partitions in (("kc-three", 3), ("kc-one", 1), ("kc-five", 5)):
            self.assertIn('topic "%s" with %d partitions:' % (topic, partitions), out)
            # Every partition is led by broker 1, with no error.
            block = out.split('topic "%s"' % topic)[1].split("topic ")[0]
            leaders = re.findall(r"partition (\d+), leader (\d+), replicas: (\S+), isrs: (\S+)",
                                 block)
            self.assertEqual(sorted(int(p) for p, _, _, _ in leaders), list(range(partitions)))
            self.assertEqual({(l, r, i) for _, l, r, i in leaders}, {("1", "1", "1")})
            self.assertNotIn("Broker:", block)  # error strings look like "Broker: ..."

    def test_metadata_listing_one_topic(self):
        out = kcat("-b", self.broker.bootstrap, "-L", "-t", "kc-five")
        self.assertIn('topic "kc-five" with 5 partitions:', out)
        self.assertNotIn("kc-three", out)

    def produce_and_read(self, topic, partition, lines, extra=()):
        data = "".join("%s:%s\n" % kv for kv in lines).encode()
        kcat("-b", self.broker.bootstrap, "-P", "-t", topic, "-p", str(partition), "-K", ":",
             "-X", "acks=all", *extra, stdin=data)
        out = kcat("-b", self.broker.bootstrap, "-C", "-t", topic, "-p", str(partition), "-e",
                   "-o", "beginning", "-f", "%k=%s\n")
        self.assertEqual(out, "".join("%s=%s\n" % kv for kv in lines))
        out = kcat("-b", self.broker.bootstrap, "-C", "-t", topic, "-p", str(partition), "-e",
                   "-o", "beginning", "-f", "%p %o %k\n")
        self.assertEqual(out, "".join("%d %d %s\n" % (partition, i, k)
                                      for i, (k, _) in enumerate(lines)))

    def test_produce_consume_exact(self):
        lines = [("key%d" % i, "value %d with spaces, = and %% signs" % i) for i in range(2000)]
        self.produce_and_read("kc-one", 0, lines)

    def test_produce_consume_compressed_to_one_partition(self):
        lines = [("k%d" % i, "v" * (i % 100) + str(i)) for i in range(1500)]
        self.produce_and_read("kc-three", 2, lines, extra=("-z", "snappy"))
        # The other partitions stay empty.
        for p in (0, 1):
            out = kcat("-b", self.broker.bootstrap, "-C", "-t", "kc-three", "-p", str(p), "-e",
                       "-o", "beginning", "-f", "%k=%s\n")
            self.assertEqual(out, "")

    def test_consume_from_offset(self):
        lines = [("o%d" % i, "x%d" % i) for i in range(100)]
        kcat("-b", self.broker.bootstrap, "-P", "-t", "kc-five", "-p", "4", "-K", ":",
             stdin="".join("%s:%s\n" % kv for kv in lines).encode())
        out = kcat("-b", self.broker.bootstrap, "-C", "-t", "kc-five", "-p", "4", "-e",
                   "-o", "90", "-f", "%o %k=%s\n")
        self.assertEqual(out, "".join("%d %s=%s\n" % (i, k, v)
                                      for i, (k, v) in enumerate(lines) if i >= 90))


if __name__ == "__main__":
    unittest.main(verbosity=2)
