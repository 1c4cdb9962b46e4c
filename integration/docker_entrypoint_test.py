#!/usr/bin/python3
"""docker/run, the image's entrypoint, run on the host (no container): the apache/kafka
environment contract turned into the properties file it writes, and the broker it execs.

Config cases run the script with a stub in place of the broker (RUNNEL_BIN) that prints
its pid and arguments, and compare the written file byte for byte. The last case execs
the real broker ($RUNNEL_BIN, as set by ctest) configured the way Testcontainers'
KafkaContainer configures apache/kafka, produces and consumes through the advertised
127.0.0.1 listener, and stops it with SIGTERM sent to the script's own pid.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from broker import default_binary  # noqa: E402
from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN = os.path.join(ROOT, "docker", "run")
DEFAULT_CLUSTER_ID = "5L6g3nShT-eMCtK--X86sw"

# docker/server.properties without its comments and blank lines.
DEFAULT_PROPERTIES = [
    "process.roles=broker,controller",
    "node.id=1",
    "controller.quorum.voters=1@localhost:9093",
    "listeners=PLAINTEXT://:9092,CONTROLLER://:9093",
    "inter.broker.listener.name=PLAINTEXT",
    "advertised.listeners=PLAINTEXT://localhost:9092",
    "controller.listener.names=CONTROLLER",
    "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,"
    "SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL",
    "num.network.threads=3",
    "num.io.threads=8",
    "socket.send.buffer.bytes=102400",
    "socket.receive.buffer.bytes=102400",
    "socket.request.max.bytes=104857600",
    "log.dirs=/var/lib/kafka/data",
    "num.partitions=1",
    "num.recovery.threads.per.data.dir=1",
    "offsets.topic.replication.factor=1",
    "transaction.state.log.replication.factor=1",
    "transaction.state.log.min.isr=1",
    "log.retention.hours=168",
    "log.segment.bytes=1073741824",
    "log.retention.check.interval.ms=300000",
]

# Kafka's excluded variables (KafkaDockerWrapper.ExcludeServerPropsEnv) plus
# KAFKA_HEAP_OPTS, less KAFKA_LOG4J_ROOT_LOGLEVEL, which maps to logging.level.
IGNORED = ["KAFKA_VERSION", "KAFKA_HEAP_OPT", "KAFKA_HEAP_OPTS", "KAFKA_LOG4J_OPTS",
           "KAFKA_OPTS", "KAFKA_JMX_OPTS", "KAFKA_JVM_PERFORMANCE_OPTS", "KAFKA_GC_LOG_OPTS",
           "KAFKA_LOG4J_LOGGERS", "KAFKA_TOOLS_LOG4J_LOGLEVEL", "KAFKA_JMX_HOSTNAME"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Dirs:
    """A temp config dir, shared (mounted) config dir and a stub broker."""

    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="runnel-docker-run.")
        self.config = os.path.join(self.root, "config")
        self.shared = os.path.join(self.root, "shared")
        os.makedirs(self.shared)
        self.stub = os.path.join(self.root, "stub-runnel")
        with open(self.stub, "w") as f:
            f.write('#!/bin/sh\necho "stub pid=$$ argv=$*"\n')
        os.chmod(self.stub, 0o755)

    def output(self):
        with open(os.path.join(self.config, "server.properties")) as f:
            return f.read()

    def write_shared(self, text):
        with open(os.path.join(self.shared, "server.properties"), "w") as f:
            f.write(text)

    def env(self, extra, binary=None):
        """A clean environment: nothing from the test's own leaks in."""
        env = {"PATH": "/usr/bin:/bin", "RUNNEL_BIN": binary or self.stub,
               "RUNNEL_CONFIG_DIR": self.config, "RUNNEL_SHARED_CONFIG_DIR": self.shared}
        env.update(extra)
        return env


class ConfigTest(unittest.TestCase):
    def setUp(self):
        self.dirs = Dirs()

    def tearDown(self):
        shutil.rmtree(self.dirs.root, ignore_errors=True)

    def run_script(self, env, args=(), expect_rc=0):
        proc = subprocess.Popen([RUN] + list(args), env=self.dirs.env(env),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out = proc.communicate(timeout=30)[0].decode()
        self.assertEqual(proc.returncode, expect_rc, out)
        if expect_rc == 0:
            # exec: the stub runs as the script's own process, given the written file.
            self.assertIn("stub pid=%d argv=%s/server.properties\n" % (proc.pid, self.dirs.config),
                          out)
        return out

    def test_defaults_when_nothing_is_configured(self):
        out = self.run_script({})
        lines = [ln for ln in self.dirs.output().splitlines()
                 if ln.strip() and not ln.startswith("#")]
        self.assertEqual(lines, DEFAULT_PROPERTIES + ["cluster.id=" + DEFAULT_CLUSTER_ID])
        self.assertIn("using the defaults", out)

    def test_variable_names_become_property_names(self):
        self.run_script({
            "KAFKA_NUM_PARTITIONS": "3",
            "KAFKA_LOG_RETENTION_MS": "60000",
            "KAFKA_FOO__BAR": "double",                # __ -> _
            "KAFKA_FOO___BAR": "triple",               # ___ -> -
            "KAFKA_A___B__C_D": "mixed",               # a-b_c.d
            "KAFKA_LISTENER_NAME_X__Y_SASL_ENABLED___MECHANISMS": "PLAIN",
            "KAFKA_EMPTY": "",
            "NOT_KAFKA_NUM_PARTITIONS": "9",
            "RUNNEL_ANYTHING": "x",
        })
        self.assertEqual(self.dirs.output(),
                         "cluster.id=%s\n"
                         "a-b_c.d=mixed\n"
                         "empty=\n"
                         "foo_bar=double\n"
                         "foo-bar=triple\n"
                         "listener.name.x_y.sasl.enabled-mechanisms=PLAIN\n"
                         "log.retention.ms=60000\n"
                         "num.partitions=3\n" % DEFAULT_CLUSTER_ID)

    def test_jvm_and_log4j_variables_are_not_properties(self):
        env = {name: "-Xsomething" for name in IGNORED}
        env["KAFKA_NODE_ID"] = "7"
        env["KAFKA_LOG4J_ROOT_LOGLEVEL"] = "debug"
        out = self.run_script(env)
        self.assertEqual(self.dirs.output(),
                         "cluster.id=%s\nlogging.level=DEBUG\nnode.id=7\n" % DEFAULT_CLUSTER_ID)
        for name in IGNORED:
            self.assertEqual(len(re.findall(r"Ignoring %s:" % name, out)), 1, out)
        self.assertNotIn("Ignoring KAFKA_LOG4J_ROOT_LOGLEVEL", out)
        self.assertNotIn("Ignoring KAFKA_NODE_ID", out)

    def test_log4j_levels_map_to_logging_level(self):
        for given, expected in [("TRACE", "TRACE"), ("Info", "INFO"), ("warn", "WARN"),
                                ("ERROR", "ERROR"), ("FATAL", "ERROR"), ("OFF", "ERROR"),
                                ("ALL", "TRACE")]:
            self.run_script({"KAFKA_LOG4J_ROOT_LOGLEVEL": given, "KAFKA_NODE_ID": "1"})
            self.assertEqual(self.dirs.output(),
                             "cluster.id=%s\nlogging.level=%s\nnode.id=1\n"
                             % (DEFAULT_CLUSTER_ID, expected))
        out = self.run_script({"KAFKA_LOG4J_ROOT_LOGLEVEL": "LOUD", "KAFKA_NODE_ID": "1"})
        self.assertIn("Ignoring KAFKA_LOG4J_ROOT_LOGLEVEL=LOUD", out)
        self.assertEqual(self.dirs.output(), "cluster.id=%s\nnode.id=1\n" % DEFAULT_CLUSTER_ID)

    def test_log_level_alone_keeps_the_defaults(self):
        # As in Kafka, the log level goes to logging, not to server.properties: with no
        # other setting the default broker config still applies.
        self.run_script({"KAFKA_LOG4J_ROOT_LOGLEVEL": "WARN"})
        lines = [ln for ln in self.dirs.output().splitlines()
                 if ln.strip() and not ln.startswith("#")]
        self.assertEqual(lines, DEFAULT_PROPERTIES +
                         ["cluster.id=" + DEFAULT_CLUSTER_ID, "logging.level=WARN"])

    def test_listeners_derived_from_advertised_listeners(self):
        out = self.run_script({
            "KAFKA_ADVERTISED_LISTENERS": "PLAINTEXT://kafka:19092,PLAINTEXT_HOST://localhost:9092"})
        self.assertEqual(self.dirs.output(),
                         "cluster.id=%s\n"
                         "advertised.listeners=PLAINTEXT://kafka:19092,PLAINTEXT_HOST://localhost:9092\n"
                         "listeners=PLAINTEXT://0.0.0.0:19092,PLAINTEXT_HOST://0.0.0.0:9092\n"
                         % DEFAULT_CLUSTER_ID)
        self.assertIn("derived from KAFKA_ADVERTISED_LISTENERS", out)
        # Given explicitly (or set empty, which counts as unset), nothing is derived.
        self.run_script({"KAFKA_ADVERTISED_LISTENERS": "PLAINTEXT://kafka:19092",
                         "KAFKA_LISTENERS": "PLAINTEXT://:19092"})
        self.assertEqual(self.dirs.output(),
                         "cluster.id=%s\nadvertised.listeners=PLAINTEXT://kafka:19092\n"
                         "listeners=PLAINTEXT://:19092\n" % DEFAULT_CLUSTER_ID)
        self.run_script({"KAFKA_ADVERTISED_LISTENERS": "PLAINTEXT://kafka:19092",
                         "KAFKA_LISTENERS": ""})
        self.assertEqual(self.dirs.output(),
                         "cluster.id=%s\nadvertised.listeners=PLAINTEXT://kafka:19092\n"
                         "listeners=PLAINTEXT://0.0.0.0:19092\n" % DEFAULT_CLUSTER_ID)

    def test_mounted_server_properties_is_merged_under_the_environment(self):
        self.dirs.write_shared("# mine\nnum.partitions=1\nlog.retention.hours=1")
        self.run_script({"KAFKA_NUM_PARTITIONS": "4"})
        self.assertEqual(self.dirs.output(),
                         "# mine\nnum.partitions=1\nlog.retention.hours=1\n"
                         "cluster.id=%s\nnum.partitions=4\n" % DEFAULT_CLUSTER_ID)
        # Without environment, the mounted file alone replaces the defaults.
        self.run_script({})
        self.assertEqual(self.dirs.output(),
                         "# mine\nnum.partitions=1\nlog.retention.hours=1\n"
                         "cluster.id=%s\n" % DEFAULT_CLUSTER_ID)
        # A blank mounted file with no environment falls back to the defaults.
        self.dirs.write_shared("\n  \n")
        self.run_script({})
        self.assertTrue(self.dirs.output().startswith("# The image's default"))

    def test_cluster_id(self):
        self.run_script({"CLUSTER_ID": "MkU3OEVBNTcwNTJENDM2Qg", "KAFKA_NODE_ID": "1"})
        self.assertEqual(self.dirs.output(), "cluster.id=MkU3OEVBNTcwNTJENDM2Qg\nnode.id=1\n")
        # An empty CLUSTER_ID is unset, as in Kafka's configureDefaults.
        self.run_script({"CLUSTER_ID": "", "KAFKA_NODE_ID": "1"})
        self.assertEqual(self.dirs.output(), "cluster.id=%s\nnode.id=1\n" % DEFAULT_CLUSTER_ID)
        # The default does not override a cluster.id from the mounted file or KAFKA_*...
        self.dirs.write_shared("cluster.id = fromfile\n")
        self.run_script({})
        self.assertEqual(self.dirs.output(), "cluster.id = fromfile\n")
        self.run_script({"KAFKA_CLUSTER_ID": "fromkafkaenv"})
        self.assertEqual(self.dirs.output(), "cluster.id = fromfile\ncluster.id=fromkafkaenv\n")
        # ...but an explicit CLUSTER_ID does (it comes later in the file).
        self.run_script({"CLUSTER_ID": "explicit"})
        self.assertEqual(self.dirs.output(), "cluster.id = fromfile\ncluster.id=explicit\n")

    def test_arguments_are_exported_first(self):
        out = self.run_script({"KAFKA_NODE_ID": "1"}, args=["KAFKA_NODE_ID=5", "CLUSTER_ID=argid"])
        self.assertIn("Overriding env params with args", out)
        self.assertEqual(self.dirs.output(), "cluster.id=argid\nnode.id=5\n")

    def test_controller_only_role_is_refused(self):
        out = self.run_script({"KAFKA_PROCESS_ROLES": "controller"}, expect_rc=1)
        self.assertIn("Runnel has no KRaft controller", out)
        self.assertNotIn("stub pid=", out)
        self.assertFalse(os.path.exists(os.path.join(self.dirs.config, "server.properties")))


class ServeTest(unittest.TestCase):
    """The real broker behind the script, configured as Testcontainers does it."""

    def setUp(self):
        self.dirs = Dirs()
        self.proc = None

    def tearDown(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dirs.root, ignore_errors=True)

    def test_serves_clients_and_stops_on_sigterm(self):
        port, broker_port, controller_port = free_port(), free_port(), free_port()
        data = os.path.join(self.dirs.root, "data")
        cluster_id = "4L6g3nShT-eMCtK--X86sw"
        self.dirs.write_shared("num.partitions=1\nauto.create.topics.enable=true\n")
        env = self.dirs.env({
            "CLUSTER_ID": cluster_id,
            "KAFKA_LISTENERS": "PLAINTEXT://127.0.0.1:%d,BROKER://127.0.0.1:%d,"
                               "CONTROLLER://127.0.0.1:%d" % (port, broker_port, controller_port),
            "KAFKA_ADVERTISED_LISTENERS": "PLAINTEXT://127.0.0.1:%d,BROKER://localhost:%d"
                                          % (port, broker_port),
            "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP":
                "BROKER:PLAINTEXT,PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "KAFKA_INTER_BROKER_LISTENER_NAME": "BROKER",
            "KAFKA_PROCESS_ROLES": "broker,controller",
            "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
            "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@127.0.0.1:%d" % controller_port,
            "KAFKA_NODE_ID": "1",
            "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
            "KAFKA_OFFSETS_TOPIC_NUM_PARTITIONS": "1",
            "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
            "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
            "KAFKA_LOG_FLUSH_INTERVAL_MESSAGES": "9223372036854775807",
            "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
            "KAFKA_HEAP_OPTS": "-Xmx1G -Xms1G",
            "KAFKA_NUM_PARTITIONS": "3",  # wins over the mounted file's 1
            "KAFKA_LOG_DIRS": data,
        }, binary=default_binary())
        log_path = os.path.join(self.dirs.root, "out.log")
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen([RUN], env=env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)

        def output():
            with open(log_path, "rb") as f:
                return f.read().decode(errors="replace")

        listening = "Listening on PLAINTEXT://127.0.0.1:%d" % port
        deadline = time.monotonic() + 30
        while listening not in output():
            self.assertIsNone(self.proc.poll(), output())
            self.assertLess(time.monotonic(), deadline, output())
            time.sleep(0.02)
        # The script exec'd the broker: same pid, now running the binary.
        self.assertEqual(os.path.realpath("/proc/%d/exe" % self.proc.pid),
                         os.path.realpath(default_binary()))

        bootstrap = "127.0.0.1:%d" % port
        producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
        md = producer.list_topics(timeout=10)
        self.assertEqual(md.cluster_id, cluster_id)
        self.assertEqual({b.id: "%s:%d" % (b.host, b.port) for b in md.brokers.values()},
                         {1: bootstrap})
        # Metadata auto-creates the topic with KAFKA_NUM_PARTITIONS partitions.
        deadline = time.monotonic() + 20
        while True:
            topic = producer.list_topics("docker-entrypoint", timeout=10).topics["docker-entrypoint"]
            if topic.error is None and topic.partitions:
                break
            self.assertLess(time.monotonic(), deadline, str(topic.error))
            time.sleep(0.1)
        self.assertEqual(len(topic.partitions), 3)
        for i in range(6):
            producer.produce("docker-entrypoint", key=b"k%d" % i, value=b"v%d" % i,
                             partition=i % 3)
        self.assertEqual(producer.flush(30), 0)

        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "docker-entrypoint-test",
                             "auto.offset.reset": "earliest", "enable.auto.commit": False})
        consumer.assign([TopicPartition("docker-entrypoint", p, 0) for p in range(3)])
        got = {}
        deadline = time.monotonic() + 30
        while len(got) < 6 and time.monotonic() < deadline:
            m = consumer.poll(0.5)
            if m is not None and m.error() is None:
                got[m.key()] = (m.partition(), m.value())
        consumer.close()
        self.assertEqual(got, {b"k%d" % i: (i % 3, b"v%d" % i) for i in range(6)})

        del producer  # before the broker goes, or librdkafka logs the disconnect
        self.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.proc.wait(30), 0, output())
        out = output()
        self.assertIn("Ignoring KAFKA_HEAP_OPTS:", out)
        self.assertNotIn("heap.opts", out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
