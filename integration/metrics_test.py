#!/usr/bin/python3
"""The Prometheus endpoint (metrics.listener) and logging.level against a real runnel
process.

With metrics.listener=127.0.0.1:0 the broker logs the bound port; the test creates a
topic, produces a known number of records to known partitions with confluent-kafka
(one flush per record, so each is its own Produce request), consumes them in a group
and commits known offsets, then scrapes with urllib and checks exact values: topics,
partitions, log end offsets, log sizes (against the .log files on disk), lag per
partition (high watermark minus committed offset) and per group, groups by state, and
request counters. Also: the text format (HELP and TYPE before every sample), 404, 405,
HEAD, keep-alive, an oversized request head, and that without the key the broker opens
no port but the Kafka listener. logging.level=DEBUG prints connection and topic lines
that INFO does not; WARN prints nothing below WARN.

Run under Debian's /usr/bin/python3 (python3-confluent-kafka).
"""

import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import shutil
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from broker import Broker, default_binary  # noqa: E402
from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

_METRICS_LINE = re.compile(r"Metrics listening on http://([^\s:]+):(\d+)/metrics")
_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def wait_for(predicate, what, deadline_s=30):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


def parse_exposition(text):
    """{(name, frozenset(labels)): value}, checking HELP/TYPE precede each family."""
    samples = {}
    typed = {}
    helped = set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helped.add(line.split(" ")[2])
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("counter", "gauge", "histogram"), line
            assert name not in typed, "TYPE twice for " + name
            typed[name] = kind
            continue
        m = _SAMPLE.match(line)
        assert m, "not a sample line: %r" % line
        name = m.group(1)
        family = name
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and typed.get(name[: -len(suffix)]) == "histogram":
                family = name[: -len(suffix)]
        assert family in typed, "sample before its TYPE: " + line
        assert family in helped, "sample without HELP: " + line
        labels = frozenset(_LABEL.findall(m.group(3) or ""))
        value = m.group(4)
        samples[(name, labels)] = float(value)
    return samples, typed


def listening_sockets(pid):
    """How many TCP sockets the process has in LISTEN state."""
    inodes = set()
    fd_dir = "/proc/%d/fd" % pid
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            next(f)
            for row in f:
                cols = row.split()
                if cols[3] == "0A" and cols[9] in inodes:
                    count += 1
    return count


class MetricsTest(unittest.TestCase):
    def start(self, overrides):
        self.broker = Broker(overrides=overrides)
        self.addCleanup(self.broker.close)
        self.broker.start()

    def metrics_url(self):
        m = wait_for(lambda: _METRICS_LINE.search(self.broker.output()), "Metrics line")
        self.assertEqual(m.group(1), "127.0.0.1")
        return "http://127.0.0.1:%s" % m.group(2)

    def scrape(self, base):
        with urllib.request.urlopen(base + "/metrics", timeout=30) as r:
            self.assertEqual(r.status, 200)
            self.assertEqual(r.headers["Content-Type"], "text/plain; version=0.0.4; charset=utf-8")
            return parse_exposition(r.read().decode())

    def test_scrape_counts_exactly(self):
        self.start(["metrics.listener=127.0.0.1:0", "group.initial.rebalance.delay.ms=0"])
        base = self.metrics_url()
        self.assertEqual(listening_sockets(self.broker.proc.pid), 2)

        admin = AdminClient({"bootstrap.servers": self.broker.bootstrap})
        admin.create_topics([NewTopic("mt", 3, 1)], operation_timeout=30)["mt"].result(60)
        per_partition = {0: 5, 1: 3, 2: 2}
        p = Producer({"bootstrap.servers": self.broker.bootstrap, "linger.ms": 0})
        sent = 0
        for partition, n in per_partition.items():
            for i in range(n):
                p.produce("mt", ("value-%d-%d" % (partition, i)).encode(), partition=partition)
                self.assertEqual(p.flush(30), 0)
                sent += 1

        c = Consumer({"bootstrap.servers": self.broker.bootstrap, "group.id": "mg",
                      "auto.offset.reset": "earliest", "enable.auto.commit": False})
        c.subscribe(["mt"])
        got = 0
        end = time.monotonic() + 60
        while got < sent and time.monotonic() < end:
            m = c.poll(0.5)
            if m is not None:
                self.assertIsNone(m.error(), m.error())
                got += 1
        self.assertEqual(got, sent)
        c.commit(offsets=[TopicPartition("mt", 0, 2), TopicPartition("mt", 1, 3)],
                 asynchronous=False)
        c.close()

        samples, typed = self.scrape(base)

        def value(name, **labels):
            key = (name, frozenset(labels.items()))
            self.assertIn(key, samples, "%s%s missing" % (name, labels))
            return samples[key]

        self.assertEqual(typed["runnel_requests_total"], "counter")
        self.assertEqual(typed["runnel_request_latency_seconds"], "histogram")
        self.assertEqual(typed["runnel_consumer_group_lag"], "gauge")
        self.assertGreaterEqual(value("runnel_requests_total", api="Produce"), sent)
        self.assertGreaterEqual(value("runnel_requests_total", api="CreateTopics"), 1)
        self.assertGreaterEqual(value("runnel_requests_total", api="OffsetCommit"), 1)
        self.assertEqual(value("runnel_request_latency_seconds_count", api="Produce"),
                         value("runnel_requests_total", api="Produce"))
        self.assertEqual(value("runnel_request_latency_seconds_bucket", api="Produce", le="+Inf"),
                         value("runnel_requests_total", api="Produce"))
        # Served APIs appear before their first request.
        self.assertEqual(value("runnel_requests_total", api="DeleteRecords"), 0)

        self.assertEqual(value("runnel_topics"), 1)
        self.assertEqual(value("runnel_partitions"), 3)
        self.assertEqual(value("runnel_log_end_offset", topic="mt"), sent)
        on_disk = 0
        for partition in per_partition:
            d = os.path.join(self.broker.data_dir, "mt-%d" % partition)
            on_disk += sum(os.path.getsize(os.path.join(d, f))
                           for f in os.listdir(d) if f.endswith(".log"))
        self.assertGreater(on_disk, 0)
        self.assertEqual(value("runnel_log_size_bytes", topic="mt"), on_disk)
        self.assertGreater(value("runnel_log_size_bytes", topic="__consumer_offsets"), 0)
        # Every produced batch arrived in a request; every byte went out in a fetch.
        self.assertGreater(value("runnel_network_received_bytes_total"), on_disk)
        self.assertGreater(value("runnel_network_sent_bytes_total"), on_disk)
        self.assertGreaterEqual(value("runnel_connections_accepted_total"), 3)

        self.assertEqual(value("runnel_consumer_groups", state="Empty"), 1)
        self.assertEqual(value("runnel_consumer_groups", state="Stable"), 0)
        self.assertEqual(value("runnel_consumer_group_members", group="mg"), 0)
        self.assertEqual(value("runnel_consumer_group_lag", group="mg", topic="mt",
                               partition="0"), 5 - 2)
        self.assertEqual(value("runnel_consumer_group_lag", group="mg", topic="mt",
                               partition="1"), 3 - 3)
        self.assertNotIn(("runnel_consumer_group_lag",
                          frozenset({"group": "mg", "topic": "mt", "partition": "2"}.items())),
                         samples)
        self.assertEqual(value("runnel_consumer_group_lag_sum", group="mg"), 3)

        self.assertGreater(value("process_resident_memory_bytes"), 0)
        self.assertGreater(value("process_open_fds"), 0)
        start = value("process_start_time_seconds")
        self.assertLessEqual(start, time.time())
        self.assertGreater(start, time.time() - 3600)

        # Deleting the topic drops its series and its partitions.
        admin.delete_topics(["mt"], operation_timeout=30)["mt"].result(60)
        samples, _ = self.scrape(base)
        self.assertEqual(samples[("runnel_partitions", frozenset())], 0)
        self.assertNotIn(("runnel_log_size_bytes", frozenset({"topic": "mt"}.items())), samples)

    def test_http(self):
        self.start(["metrics.listener=127.0.0.1:0"])
        base = self.metrics_url()
        port = int(base.rsplit(":", 1)[1])

        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(base + "/other", timeout=30)
        self.assertEqual(e.exception.code, 404)
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(urllib.request.Request(base + "/metrics", data=b"x"),
                                   timeout=30)
        self.assertEqual(e.exception.code, 405)
        with urllib.request.urlopen(base + "/metrics?name[]=x", timeout=30) as r:
            self.assertEqual(r.status, 200)

        # Keep-alive: many requests on one connection, HEAD without a body.
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for _ in range(50):
            conn.request("GET", "/metrics")
            r = conn.getresponse()
            body = r.read()
            self.assertEqual(r.status, 200)
            self.assertEqual(int(r.headers["Content-Length"]), len(body))
            self.assertIn(b"# TYPE runnel_requests_total counter\n", body)
        conn.request("HEAD", "/metrics")
        r = conn.getresponse()
        self.assertEqual(r.status, 200)
        self.assertGreater(int(r.headers["Content-Length"]), 0)
        self.assertEqual(r.read(), b"")
        conn.close()

        # A request head over the bound gets 431 and the connection closed.
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        s.sendall(b"GET /metrics HTTP/1.1\r\nX-Filler: " + b"a" * 10000)
        reply = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            reply += chunk
        s.close()
        self.assertTrue(reply.startswith(b"HTTP/1.1 431 "), reply[:100])

        # Garbage gets 400.
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        s.sendall(b"HELLO\r\n\r\n")
        self.assertTrue(s.recv(4096).startswith(b"HTTP/1.1 400 "))
        s.close()

        # The Kafka side still works.
        admin = AdminClient({"bootstrap.servers": self.broker.bootstrap})
        self.assertIsNotNone(admin.list_topics(timeout=30))
        self.assertEqual(self.broker.stop(), 0)

    def test_no_port_without_key(self):
        self.start([])
        AdminClient({"bootstrap.servers": self.broker.bootstrap}).list_topics(timeout=30)
        self.assertNotIn("Metrics listening", self.broker.output())
        self.assertEqual(listening_sockets(self.broker.proc.pid), 1)


class LoggingLevelTest(unittest.TestCase):
    def run_admin(self, bootstrap, topic):
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic(topic, 2, 1)], operation_timeout=30)[topic].result(60)
        admin.delete_topics([topic], operation_timeout=30)[topic].result(60)

    def test_debug_prints_connections_and_topics(self):
        b = Broker(overrides=["logging.level=DEBUG"])
        self.addCleanup(b.close)
        b.start()
        self.run_admin(b.bootstrap, "lv")
        out = wait_for(lambda: (lambda o: o if " DEBUG Closed connection from 127.0.0.1:" in o
                                else None)(b.output()), "the Closed connection line")
        self.assertRegex(out, r"\] DEBUG Accepted connection from 127\.0\.0\.1:\d+\n")
        self.assertIn("] DEBUG Created topic lv with 2 partition(s)\n", out)
        self.assertIn("] DEBUG Deleted topic lv\n", out)
        self.assertEqual(b.stop(), 0)

    def test_info_is_the_default(self):
        b = Broker()
        self.addCleanup(b.close)
        b.start()
        self.run_admin(b.bootstrap, "lv")
        self.assertEqual(b.stop(), 0)
        out = b.output()
        self.assertIn(" INFO ", out)
        self.assertNotIn(" DEBUG ", out)

    def test_warn_prints_only_warnings(self):
        # Without INFO there is no Listening line to read the port from: pick one.
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        root = tempfile.mkdtemp(prefix="runnel-it-py.")
        self.addCleanup(shutil.rmtree, root, True)
        log_path = os.path.join(root, "broker.log")
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [default_binary(), "--override", "listeners=PLAINTEXT://127.0.0.1:%d" % port,
                 "--override", "log.dirs=" + os.path.join(root, "data"),
                 "--override", "logging.level=WARN", "--override", "no.such.key=1"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())

        def connects():
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return True
            except OSError:
                return False
        wait_for(connects, "the Kafka port")
        self.run_admin("127.0.0.1:%d" % port, "lv")
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(30), 0)
        with open(log_path) as f:
            lines = f.read().splitlines()
        self.assertIn("WARN The configuration 'no.such.key' was supplied but isn't a known config.",
                      [line.split("] ", 1)[1] for line in lines])
        for line in lines:
            self.assertRegex(line, r"^\[[0-9-]+ [0-9:]+,\d{3}\] (WARN|ERROR) ")


if __name__ == "__main__":
    unittest.main()
