#!/usr/bin/python3
"""Operating a real runnel process as Kafka is operated: named listeners, cluster
identity, DescribeCluster, DescribeLogDirs, the readiness line and SIGTERM.

  * Two named listeners: Metadata and DescribeCluster answer each connection with the
    advertised address of the listener it arrived on, and a confluent-kafka client
    bootstrapped through either listener produces and consumes.
  * DescribeCluster v0-v2: cluster id, controller, authorized operations, endpoint
    type errors (MISMATCHED_ENDPOINT_TYPE, UNSUPPORTED_ENDPOINT_TYPE, INVALID_REQUEST).
  * DescribeLogDirs v1 and v4: the dir's absolute path, exact partition sizes, the
    filter on partitions (Kafka keeps the other topics, with no partitions).
  * cluster.id: set once, kept in meta.properties across restarts; a different one
    later is refused at startup.
  * SIGTERM: the readiness line was printed; a long-polling Fetch in flight is still
    answered, new connections are refused, the process exits 0, and the next start
    finds the clean-shutdown marker.

Standard library and confluent-kafka; runs under /usr/bin/python3 with RUNNEL_BIN set.
"""

import os
import re
import signal
import socket
import struct
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import raw_protocol_test as raw  # noqa: E402
from broker import Broker  # noqa: E402

DESCRIBE_LOG_DIRS, DESCRIBE_CLUSTER = 35, 60
raw.FIRST_FLEXIBLE.setdefault(DESCRIBE_LOG_DIRS, 2)
raw.FIRST_FLEXIBLE.setdefault(DESCRIBE_CLUSTER, 0)

INVALID_REQUEST = 42
MISMATCHED_ENDPOINT_TYPE = 114
UNSUPPORTED_ENDPOINT_TYPE = 115
# CREATE, ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE
CLUSTER_OPERATIONS = sum(1 << op for op in (5, 7, 8, 9, 10, 11, 12))
READY_LINE = "Transitioning from RECOVERY to RUNNING"


def describe_cluster(conn, version=1, endpoint_type=1, include_ops=False):
    w = raw.Writer(flexible=True)
    w.bool(include_ops)
    if version >= 1:
        w.i8(endpoint_type)
    if version >= 2:
        w.bool(False)  # include_fenced_brokers
    w.tags()
    r = conn.call(DESCRIBE_CLUSTER, version, bytes(w.buf))
    out = {"throttle": r.i32(), "error": r.i16(), "message": r.string()}
    if version >= 1:
        out["endpoint_type"] = r.i8()
    out["cluster_id"] = r.string()
    out["controller_id"] = r.i32()

    def broker(rr):
        b = {"id": rr.i32(), "host": rr.string(), "port": rr.i32(), "rack": rr.string()}
        if version >= 2:
            b["fenced"] = rr.bool()
        rr.tags()
        return b

    out["brokers"] = r.array(broker)
    out["ops"] = r.i32()
    r.tags()
    raw.done(r)
    return out


def describe_log_dirs(conn, version, topics=None):
    """topics: None (all) or [(topic, [partitions])] -> list of dir results."""
    flexible = version >= 2
    w = raw.Writer(flexible=flexible)

    def topic(ww, t):
        ww.string(t[0])
        ww.array(t[1], lambda www, p: www.i32(p))
        ww.tags()

    w.array(topics, topic)
    w.tags()
    r = conn.call(DESCRIBE_LOG_DIRS, version, bytes(w.buf))
    r.i32()  # throttle
    top_error = r.i16() if version >= 3 else 0

    def partition(rr):
        p = {"partition": rr.i32(), "size": rr.i64(), "lag": rr.i64(), "future": rr.bool()}
        rr.tags()
        return p

    def topic_result(rr):
        name = rr.string()
        parts = rr.array(partition)
        rr.tags()
        return name, parts

    def result(rr):
        d = {"error": rr.i16(), "dir": rr.string(), "topics": dict(rr.array(topic_result))}
        if version >= 4:
            d["total"] = rr.i64()
            d["usable"] = rr.i64()
        rr.tags()
        return d

    results = r.array(result)
    r.tags()
    raw.done(r)
    return top_error, results


def listening_ports(output):
    return {m.group(1): int(m.group(2))
            for m in re.finditer(r"Listening on (\w+)://[^\s]*:(\d+)", output)}


class ListenersTest(unittest.TestCase):
    def test_each_listener_advertises_its_own_address(self):
        overrides = [
            "listeners=INTERNAL://127.0.0.1:0,PLAINTEXT://127.0.0.1:0",
            "listener.security.protocol.map=INTERNAL:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "advertised.listeners=INTERNAL://127.0.0.1:0,PLAINTEXT://localhost:0",
            "inter.broker.listener.name=INTERNAL",
        ]
        with Broker(overrides=overrides) as b:
            ports = listening_ports(b.output())
            self.assertEqual(set(ports), {"INTERNAL", "PLAINTEXT"})
            expected = {"INTERNAL": "127.0.0.1", "PLAINTEXT": "localhost"}
            for name, port in ports.items():
                conn = raw.Connection("127.0.0.1", port)
                try:
                    brokers, _ = raw.metadata(conn, 12, [])
                    self.assertEqual([(x["node_id"], x["host"], x["port"]) for x in brokers],
                                     [(1, expected[name], port)], name)
                    dc = describe_cluster(conn, 1)
                    self.assertEqual(dc["error"], 0)
                    self.assertEqual([(x["id"], x["host"], x["port"]) for x in dc["brokers"]],
                                     [(1, expected[name], port)], name)
                finally:
                    conn.close()
            # A real client through each listener: it follows the advertised address.
            from confluent_kafka import Consumer, Producer, TopicPartition
            for name, port in ports.items():
                topic = "via-" + name.lower()
                bootstrap = "%s:%d" % (expected[name], port)
                p = Producer({"bootstrap.servers": bootstrap})
                for i in range(5):
                    p.produce(topic, key=b"k%d" % i, value=("%s-%d" % (name, i)).encode())
                self.assertEqual(p.flush(30), 0)
                c = Consumer({"bootstrap.servers": bootstrap, "group.id": "g-" + topic,
                              "enable.auto.commit": False})
                c.assign([TopicPartition(topic, 0, 0)])
                got = []
                deadline = time.monotonic() + 30
                while len(got) < 5 and time.monotonic() < deadline:
                    m = c.poll(0.5)
                    if m is not None and not m.error():
                        got.append((m.offset(), m.key(), m.value()))
                c.close()
                self.assertEqual(got, [(i, b"k%d" % i, ("%s-%d" % (name, i)).encode())
                                       for i in range(5)])


class DescribeClusterTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.broker = Broker(overrides=["cluster.id=Runnel-Test-Cluster-Id1"])
        cls.broker.start()

    @classmethod
    def tearDownClass(cls):
        cls.broker.close()

    def setUp(self):
        self.conn = raw.Connection(self.broker.host, self.broker.port)

    def tearDown(self):
        self.conn.close()

    def test_brokers_controller_and_cluster_id(self):
        for version in (0, 1, 2):
            dc = describe_cluster(self.conn, version)
            self.assertEqual(dc["error"], 0)
            self.assertIsNone(dc["message"])
            self.assertEqual(dc["cluster_id"], "Runnel-Test-Cluster-Id1")
            self.assertEqual(dc["controller_id"], 1)
            self.assertEqual(len(dc["brokers"]), 1)
            self.assertEqual(dc["brokers"][0]["id"], 1)
            self.assertEqual(dc["brokers"][0]["port"], self.broker.port)
            self.assertIsNone(dc["brokers"][0]["rack"])
            self.assertEqual(dc["ops"], -2**31)  # not asked for
            if version >= 1:
                self.assertEqual(dc["endpoint_type"], 1)
            if version >= 2:
                self.assertFalse(dc["brokers"][0]["fenced"])

    def test_authorized_operations_without_an_authorizer(self):
        self.assertEqual(describe_cluster(self.conn, 1, include_ops=True)["ops"],
                         CLUSTER_OPERATIONS)

    def test_endpoint_type_errors(self):
        dc = describe_cluster(self.conn, 1, endpoint_type=2)
        self.assertEqual(dc["error"], MISMATCHED_ENDPOINT_TYPE)
        self.assertEqual(dc["message"], "The request was sent to an endpoint of type BROKER, "
                                        "but we wanted an endpoint of type CONTROLLER")
        self.assertEqual(dc["brokers"], [])
        dc = describe_cluster(self.conn, 1, endpoint_type=9)
        self.assertEqual(dc["error"], UNSUPPORTED_ENDPOINT_TYPE)
        self.assertEqual(dc["message"], "Unsupported endpoint type 9")
        dc = describe_cluster(self.conn, 1, endpoint_type=0)
        self.assertEqual(dc["error"], UNSUPPORTED_ENDPOINT_TYPE)


class DescribeLogDirsTest(unittest.TestCase):
    def test_sizes_and_filters(self):
        with Broker() as b:
            conn = raw.Connection(b.host, b.port)
            try:
                created = raw.create_topics(conn, 4, [("sizes", 3, 1, {}), ("other", 1, 1, {})])
                self.assertEqual([created[n]["error"] for n in ("sizes", "other")], [0, 0])
                now = int(time.time() * 1000)
                batch0 = raw.build_batch([(now, b"k", b"v" * 100)])
                batch1 = raw.build_batch([(now, b"k", b"w" * 30), (now, b"k", b"x" * 30)])
                for partition, batch in ((0, batch0), (0, batch0), (1, batch1)):
                    self.assertEqual(raw.produce(conn, 7, "sizes", partition, batch)["error"], 0)
                real_dir = os.path.realpath(b.data_dir)

                error, results = describe_log_dirs(conn, 4)
                self.assertEqual(error, 0)
                self.assertEqual(len(results), 1)
                d = results[0]
                self.assertEqual(d["error"], 0)
                self.assertEqual(os.path.realpath(d["dir"]), real_dir)
                self.assertTrue(os.path.isabs(d["dir"]))
                self.assertEqual(sorted((p["partition"], p["size"], p["lag"], p["future"])
                                        for p in d["topics"]["sizes"]),
                                 [(0, 2 * len(batch0), 0, False), (1, len(batch1), 0, False),
                                  (2, 0, 0, False)])
                self.assertEqual([(p["partition"], p["size"]) for p in d["topics"]["other"]],
                                 [(0, 0)])
                self.assertGreater(d["total"], 0)
                self.assertTrue(0 <= d["usable"] <= d["total"])

                # Only sizes-1 asked for: the other topics stay, without partitions.
                _, results = describe_log_dirs(conn, 1, [("sizes", [1])])
                d = results[0]
                self.assertNotIn("total", d)
                self.assertEqual([(p["partition"], p["size"]) for p in d["topics"]["sizes"]],
                                 [(1, len(batch1))])
                self.assertEqual(d["topics"]["other"], [])
            finally:
                conn.close()


class ClusterIdTest(unittest.TestCase):
    def test_set_once_kept_and_checked(self):
        b = Broker(overrides=["cluster.id=FirstClusterId-abcdefg"])
        try:
            b.start()
            conn = raw.Connection(b.host, b.port)
            self.assertEqual(describe_cluster(conn)["cluster_id"], "FirstClusterId-abcdefg")
            conn.close()
            self.assertEqual(b.stop(), 0)
            with open(os.path.join(b.data_dir, "meta.properties")) as f:
                self.assertIn("cluster.id=FirstClusterId-abcdefg\n", f.read())
            # Without the key: the stored id.
            b.overrides = []
            b.start()
            conn = raw.Connection(b.host, b.port)
            self.assertEqual(describe_cluster(conn)["cluster_id"], "FirstClusterId-abcdefg")
            conn.close()
            self.assertEqual(b.stop(), 0)
            # A different id for the same data: refused, as Kafka refuses it.
            b.overrides = ["cluster.id=OtherClusterId-abcdefg"]
            with self.assertRaises(Exception) as cm:
                b.start()
            self.assertIn("Invalid cluster.id", str(cm.exception))
        finally:
            b.close()


class ShutdownTest(unittest.TestCase):
    def test_sigterm_answers_in_flight_requests_and_stops_cleanly(self):
        with Broker() as b:
            out = b.output()
            self.assertEqual(out.count(READY_LINE), 1)
            self.assertRegex(out, r"INFO \[BrokerLifecycleManager id=1\] The broker has been "
                                  r"unfenced\. Transitioning from RECOVERY to RUNNING\.")
            self.assertLess(out.index("Listening on"), out.index(READY_LINE))
            conn = raw.Connection(b.host, b.port)
            self.assertEqual(raw.create_topics(conn, 4, [("drain", 1, 1, {})])["drain"]["error"],
                             0)
            # A long poll on an empty partition, in flight when SIGTERM arrives.
            cid = conn.send(raw.FETCH, 11, raw.fetch_request(
                11, [("drain", [(0, 0, 1 << 20)])], max_wait_ms=1000, min_bytes=1))
            time.sleep(0.2)
            sent_at = time.monotonic()
            b.proc.send_signal(signal.SIGTERM)
            time.sleep(0.1)
            with self.assertRaises(OSError):
                socket.create_connection((b.host, b.port), timeout=2).close()
            try:
                r = conn.receive(raw.FETCH, 11, cid)
            except AssertionError:
                print(b.output())
                raise
            fetched = raw.parse_fetch(r, 11)
            self.assertEqual(fetched["error"], 0)
            code = b.proc.wait(10)
            self.assertEqual(code, 0)
            self.assertLess(time.monotonic() - sent_at, 5.0)
            conn.close()
            b.proc = None
            out = b.output()
            self.assertIn("Shut down cleanly", out)
            self.assertTrue(os.path.exists(os.path.join(b.data_dir, ".kafka_cleanshutdown")))


if __name__ == "__main__":
    unittest.main()
