#!/usr/bin/python3
"""Dynamic configs through the Admin API: DescribeConfigs, AlterConfigs and
IncrementalAlterConfigs, driven by kafka-python, confluent-kafka and raw requests
(built with raw_protocol_test's helpers).

Checks exact values, sources, synonyms, read-only flags and Kafka's error codes and
messages; that topic and broker dynamic configs survive a restart; and that a changed
log.segment.bytes / message.max.bytes takes effect at once.
"""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import raw_protocol_test as raw  # noqa: E402
from broker import Broker  # noqa: E402

from confluent_kafka import admin as ck_admin  # noqa: E402
from kafka.admin import ConfigResource as KpResource, ConfigResourceType  # noqa: E402
from kafka.admin import KafkaAdminClient, NewTopic  # noqa: E402

DESCRIBE_CONFIGS, ALTER_CONFIGS, INCREMENTAL_ALTER_CONFIGS = 32, 33, 44
raw.FIRST_FLEXIBLE.update({DESCRIBE_CONFIGS: 4, ALTER_CONFIGS: 2, INCREMENTAL_ALTER_CONFIGS: 1})

TOPIC, BROKER, BROKER_LOGGER = 2, 4, 8
SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3
# ConfigSource
TOPIC_CONFIG, DYNAMIC_BROKER, DYNAMIC_DEFAULT, STATIC, DEFAULT = 1, 2, 3, 4, 5
INVALID_CONFIG, INVALID_REQUEST, MESSAGE_TOO_LARGE = 40, 42, 10


def describe(conn, resources, synonyms=True, version=4):
    """resources: [(type, name, keys or None)] -> [dict(error, message, type, name,
    configs={name: dict(value, read_only, source, sensitive, synonyms, type)})]."""
    w = raw.Writer(version >= 4)
    w.array(resources, lambda w, r: w.i8(r[0]).string(r[1]).array(
        r[2], lambda w, k: w.string(k)).tags())
    w.bool(synonyms)
    if version >= 3:
        w.bool(False)
    w.tags()
    r = conn.call(DESCRIBE_CONFIGS, version, bytes(w.buf))
    r.i32()

    def synonym(r):
        s = (r.string(), r.string(), r.i8())
        r.tags()
        return s

    def config(r):
        c = {"name": r.string(), "value": r.string(), "read_only": r.bool(), "source": r.i8(),
             "sensitive": r.bool(), "synonyms": r.array(synonym)}
        if version >= 3:
            c["type"] = r.i8()
            c["doc"] = r.string()
        r.tags()
        return c

    def result(r):
        out = {"error": r.i16(), "message": r.string(), "type": r.i8(), "name": r.string()}
        out["configs"] = {c["name"]: c for c in r.array(config)}
        r.tags()
        return out

    results = r.array(result)
    r.tags()
    raw.done(r)
    return results


def alter(conn, resources, validate_only=False, incremental=True):
    """resources: [(type, name, [(key, op, value)])] (op ignored for AlterConfigs)
    -> [(error, message)] in order."""
    api = INCREMENTAL_ALTER_CONFIGS if incremental else ALTER_CONFIGS
    version = 1 if incremental else 2
    w = raw.Writer(True)

    def entry(w, c):
        w.string(c[0])
        if incremental:
            w.i8(c[1])
        w.string(c[2]).tags()

    w.array(resources, lambda w, r: w.i8(r[0]).string(r[1]).array(r[2], entry).tags())
    w.bool(validate_only).tags()
    r = conn.call(api, version, bytes(w.buf))
    r.i32()

    def result(r):
        out = (r.i16(), r.string())
        r.i8()
        r.string()
        r.tags()
        return out

    results = r.array(result)
    r.tags()
    raw.done(r)
    return results


def one(conn, type_, name, key):
    """The described config `key` of one resource."""
    (res,) = describe(conn, [(type_, name, [key])])
    assert res["error"] == 0, res
    return res["configs"][key]


class ConfigsTest(unittest.TestCase):
    def setUp(self):
        self.broker = Broker(overrides=["log.retention.hours=100"])
        self.broker.start()
        self.conn = raw.Connection(self.broker.host, self.broker.port)

    def tearDown(self):
        self.conn.close()
        self.broker.close()

    def reconnect(self):
        self.conn.close()
        self.conn = raw.Connection(self.broker.host, self.broker.port)

    def create(self, name, configs=None, version=7):
        res = raw.create_topics(self.conn, version, [(name, 1, 1, configs or {})])[name]
        self.assertEqual(res["error"], 0, res)
        return res

    def test_describe_topic_sources_and_synonyms(self):
        created = self.create("dt", {"retention.ms": "1000", "cleanup.policy": "compact"})
        (res,) = describe(self.conn, [(TOPIC, "dt", None)])
        self.assertEqual((res["error"], res["message"], res["type"], res["name"]),
                         (0, None, TOPIC, "dt"))
        configs = res["configs"]
        self.assertEqual(len(configs), 33)
        self.assertEqual(configs["retention.ms"]["value"], "1000")
        self.assertEqual(configs["retention.ms"]["source"], TOPIC_CONFIG)
        self.assertEqual(configs["retention.ms"]["synonyms"], [("retention.ms", "1000", 1)])
        self.assertEqual(configs["retention.ms"]["type"], 5)  # LONG
        self.assertFalse(configs["retention.ms"]["read_only"])
        self.assertEqual(configs["cleanup.policy"]["type"], 7)  # LIST
        self.assertEqual(configs["segment.bytes"]["source"], DEFAULT)
        self.assertEqual(configs["segment.bytes"]["synonyms"],
                         [("log.segment.bytes", "1073741824", DEFAULT)])
        # CreateTopics' configs agree with DescribeConfigs.
        self.assertEqual(dict(created["configs"]),
                         {k: c["value"] for k, c in configs.items()})
        # Without synonyms; a key filter; a missing topic; an invalid name.
        (res,) = describe(self.conn, [(TOPIC, "dt", ["segment.ms", "nope"])], synonyms=False)
        self.assertEqual(list(res["configs"]), ["segment.ms"])
        self.assertEqual(res["configs"]["segment.ms"]["synonyms"], [])
        missing, bad = describe(self.conn, [(TOPIC, "missing", None), (TOPIC, "a/b", None)])
        self.assertEqual((missing["error"], missing["message"], missing["configs"]),
                         (3, None, {}))
        self.assertEqual(bad["error"], 17)

    def test_describe_broker(self):
        (res,) = describe(self.conn, [(BROKER, "1", None)])
        self.assertEqual(res["error"], 0)
        c = res["configs"]
        # log.retention.hours=100 was given with --override.
        self.assertEqual(c["log.retention.hours"]["value"], "100")
        self.assertEqual(c["log.retention.hours"]["source"], STATIC)
        self.assertEqual(c["log.retention.hours"]["synonyms"],
                         [("log.retention.hours", "100", STATIC),
                          ("log.retention.hours", "168", DEFAULT)])
        self.assertTrue(c["log.retention.hours"]["read_only"])
        self.assertFalse(c["log.retention.ms"]["read_only"])
        self.assertEqual(c["log.retention.ms"]["value"], None)
        self.assertEqual(c["message.max.bytes"]["value"], "1048588")
        self.assertEqual(c["message.max.bytes"]["type"], 3)  # INT
        # A topic's retention.ms follows log.retention.hours.
        self.create("follows")
        self.assertEqual(one(self.conn, TOPIC, "follows", "retention.ms")["value"],
                         str(100 * 3600 * 1000))
        # Other broker ids, names that are not numbers, the logger resource.
        other, word, logger, logger_other, cluster = describe(
            self.conn, [(BROKER, "7", None), (BROKER, "x", None), (BROKER_LOGGER, "1", None),
                        (BROKER_LOGGER, "", None), (BROKER, "", None)])
        self.assertEqual((other["error"], other["message"]),
                         (INVALID_REQUEST,
                          "Unexpected broker id, expected 1 or empty string, but received 7"))
        self.assertEqual((word["error"], word["message"]),
                         (INVALID_REQUEST, "Broker id must be an integer, but it is: x"))
        self.assertEqual((logger["error"], logger["configs"]), (0, {}))
        self.assertEqual((logger_other["error"], logger_other["message"]),
                         (INVALID_REQUEST, "Broker id must not be empty"))
        self.assertEqual((cluster["error"], cluster["configs"]), (0, {}))

    def test_incremental_alter_topic(self):
        self.create("inc")
        self.assertEqual(alter(self.conn, [(TOPIC, "inc", [("cleanup.policy", APPEND, "compact"),
                                                          ("retention.ms", SET, "5000")])]),
                         [(0, None)])
        self.assertEqual(one(self.conn, TOPIC, "inc", "cleanup.policy")["value"],
                         "delete,compact")
        self.assertEqual(alter(self.conn, [(TOPIC, "inc", [("cleanup.policy", SUBTRACT,
                                                            "delete")])]), [(0, None)])
        c = one(self.conn, TOPIC, "inc", "cleanup.policy")
        self.assertEqual((c["value"], c["source"]), ("compact", TOPIC_CONFIG))
        self.assertEqual(one(self.conn, TOPIC, "inc", "retention.ms")["value"], "5000")
        self.assertEqual(alter(self.conn, [(TOPIC, "inc", [("retention.ms", DELETE, None)])]),
                         [(0, None)])
        c = one(self.conn, TOPIC, "inc", "retention.ms")
        self.assertEqual((c["value"], c["source"]), (str(100 * 3600 * 1000), DEFAULT))
        # validate_only changes nothing.
        self.assertEqual(alter(self.conn, [(TOPIC, "inc", [("retention.ms", SET, "7")])],
                               validate_only=True), [(0, None)])
        self.assertEqual(one(self.conn, TOPIC, "inc", "retention.ms")["source"], DEFAULT)
        # Kafka's errors.
        self.assertEqual(
            alter(self.conn, [(TOPIC, "inc", [("retention.ms", APPEND, "1")]),
                              (TOPIC, "missing", [("retention.ms", SET, "1")]),
                              (TOPIC, "inc2", [("nope", SET, "1")]),
                              (TOPIC, "", [("retention.ms", SET, "1")])]),
            [(INVALID_CONFIG, "Can't APPEND to key retention.ms because its type is not LIST."),
             (3, "The topic 'missing' does not exist."),
             (INVALID_CONFIG, "Unknown topic config name: nope"),
             (INVALID_REQUEST, "Default topic resources are not allowed.")])
        self.assertEqual(
            alter(self.conn, [(TOPIC, "inc", [("segment.bytes", SET, "10")])]),
            [(INVALID_CONFIG,
              "Invalid value 10 for configuration segment.bytes: Value must be at least 1048576")])
        self.assertEqual(
            alter(self.conn, [(TOPIC, "inc", [("retention.ms", SET, None)]),
                              (TOPIC, "dup", []), (TOPIC, "dup", [])]),
            [(INVALID_REQUEST, "Null value not supported for : retention.ms"),
             (INVALID_REQUEST, "Each resource must appear at most once."),
             (INVALID_REQUEST, "Each resource must appear at most once.")])

    def test_broker_dynamic_configs_apply_and_persist(self):
        self.create("roll")
        self.create("kept", {"retention.ms": "123456"})
        # Only dynamic keys, per-broker keys only per broker, only this broker.
        self.assertEqual(
            alter(self.conn, [(BROKER, "1", [("log.dirs", SET, "/x")]),
                              (BROKER, "", [("listeners", SET, "PLAINTEXT://:1")]),
                              (BROKER, "7", [("message.max.bytes", SET, "1")])]),
            [(INVALID_REQUEST, "Cannot update these configs dynamically: [log.dirs]"),
             (INVALID_REQUEST, "Cannot update these configs at default cluster level, broker "
                               "id must be specified: [listeners]"),
             (INVALID_REQUEST, "Unexpected broker id, expected 1, but received 7")])
        self.assertEqual(
            alter(self.conn, [(BROKER, "1", [("log.retention.hours", APPEND, "1")])]),
            [(INVALID_CONFIG, "Config value append is not allowed for config key: "
                              "log.retention.hours")])
        # Cluster-wide segment size, per-broker message size.
        self.assertEqual(alter(self.conn, [(BROKER, "", [("log.segment.bytes", SET, "1048576")]),
                                           (BROKER, "1", [("message.max.bytes", SET, "300000")])]),
                         [(0, None), (0, None)])
        c = one(self.conn, BROKER, "1", "message.max.bytes")
        self.assertEqual((c["value"], c["source"]), ("300000", DYNAMIC_BROKER))
        self.assertEqual(c["synonyms"], [("message.max.bytes", "300000", DYNAMIC_BROKER),
                                         ("message.max.bytes", "1048588", DEFAULT)])
        c = one(self.conn, TOPIC, "roll", "segment.bytes")
        self.assertEqual((c["value"], c["source"]), ("1048576", DYNAMIC_DEFAULT))
        self.assertEqual(c["synonyms"], [("log.segment.bytes", "1048576", DYNAMIC_DEFAULT),
                                         ("log.segment.bytes", "1073741824", DEFAULT)])
        (cluster,) = describe(self.conn, [(BROKER, "", None)])
        self.assertEqual(list(cluster["configs"]), ["log.segment.bytes"])
        self.assertEqual(cluster["configs"]["log.segment.bytes"]["synonyms"],
                         [("log.segment.bytes", "1048576", DYNAMIC_DEFAULT)])

        # message.max.bytes applies at once; the new segment size rolls the log.
        big = raw.build_batch([(1000, b"k", b"x" * 400000)])
        self.assertEqual(raw.produce(self.conn, 7, "roll", 0, big)["error"], MESSAGE_TOO_LARGE)
        for i in range(6):
            batch = raw.build_batch([(1000 + i, b"k", b"y" * 250000)])
            self.assertEqual(raw.produce(self.conn, 7, "roll", 0, batch)["error"], 0)
        part_dir = os.path.join(self.broker.data_dir, "roll-0")
        logs = sorted(f for f in os.listdir(part_dir) if f.endswith(".log"))
        self.assertEqual(len(logs), 2, logs)  # 6 x ~250 KB: 4 fit in a 1 MiB segment

        # Both layers, and the topic's own configs, survive a restart.
        self.conn.close()
        self.assertEqual(self.broker.stop(), 0)
        self.broker.restart()
        self.reconnect()
        c = one(self.conn, BROKER, "1", "message.max.bytes")
        self.assertEqual((c["value"], c["source"]), ("300000", DYNAMIC_BROKER))
        c = one(self.conn, BROKER, "1", "log.segment.bytes")
        self.assertEqual((c["value"], c["source"]), ("1048576", DYNAMIC_DEFAULT))
        c = one(self.conn, TOPIC, "kept", "retention.ms")
        self.assertEqual((c["value"], c["source"]), ("123456", TOPIC_CONFIG))
        self.assertEqual(raw.produce(self.conn, 7, "roll", 0, big)["error"], MESSAGE_TOO_LARGE)
        # Legacy AlterConfigs replaces the whole layer: message.max.bytes goes back.
        self.assertEqual(alter(self.conn, [(BROKER, "1", [("log.retention.ms", None, "60000")])],
                               incremental=False), [(0, None)])
        c = one(self.conn, BROKER, "1", "message.max.bytes")
        self.assertEqual((c["value"], c["source"]), ("1048588", DEFAULT))
        self.assertEqual(raw.produce(self.conn, 7, "roll", 0, big)["error"], 0)
        c = one(self.conn, TOPIC, "roll", "retention.ms")
        self.assertEqual((c["value"], c["source"]), ("60000", DYNAMIC_BROKER))


class ClientsTest(unittest.TestCase):
    """kafka-python and confluent-kafka's admin clients."""

    @classmethod
    def setUpClass(cls):
        cls.broker = Broker()
        cls.broker.start()

    @classmethod
    def tearDownClass(cls):
        cls.broker.close()

    def test_kafka_python(self):
        admin = KafkaAdminClient(bootstrap_servers=self.broker.bootstrap,
                                 client_id="configs-test", request_timeout_ms=10000)
        try:
            admin.create_topics([NewTopic("kp", 1, 1, topic_configs={"retention.ms": "1000"})])
            (resp,) = admin.describe_configs([KpResource(ConfigResourceType.TOPIC, "kp")],
                                             include_synonyms=True)
            (error, message, rtype, name, entries) = resp.resources[0]
            self.assertEqual((error, rtype, name), (0, TOPIC, "kp"))
            by_name = {e[0]: e for e in entries}
            # (name, value, read_only, source, sensitive, synonyms)
            self.assertEqual(by_name["retention.ms"][1:5], ("1000", False, TOPIC_CONFIG, False))
            self.assertEqual(by_name["retention.ms"][5], [("retention.ms", "1000", TOPIC_CONFIG)])
            self.assertEqual(by_name["max.message.bytes"][1:4], ("1048588", False, DEFAULT))
            resp = admin.alter_configs([KpResource(ConfigResourceType.TOPIC, "kp",
                                                   configs={"segment.ms": "60000"})])
            self.assertEqual([r[:2] for r in resp.resources], [(0, None)])
            (resp,) = admin.describe_configs([KpResource(
                ConfigResourceType.TOPIC, "kp", configs={"segment.ms": None, "retention.ms": None})])
            got = {e[0]: (e[1], e[3]) for e in resp.resources[0][4]}
            # AlterConfigs replaced the topic's configs: retention.ms is back to its default.
            self.assertEqual(got, {"segment.ms": ("60000", TOPIC_CONFIG),
                                   "retention.ms": ("604800000", DEFAULT)})
            (resp,) = admin.describe_configs([KpResource(ConfigResourceType.BROKER, "1")])
            entries = {e[0]: e for e in resp.resources[0][4]}
            self.assertEqual(entries["num.partitions"][1:4], ("1", True, DEFAULT))
        finally:
            admin.close()

    def test_confluent_kafka(self):
        client = ck_admin.AdminClient({"bootstrap.servers": self.broker.bootstrap})
        futures = client.create_topics([ck_admin.NewTopic("ck", 1, 1,
                                                          config={"retention.bytes": "4096"})])
        futures["ck"].result(10)
        res = ck_admin.ConfigResource(ck_admin.ConfigResource.Type.TOPIC, "ck")
        configs = client.describe_configs([res])[res].result(10)
        rb = configs["retention.bytes"]
        self.assertEqual((rb.value, rb.source, rb.is_read_only, rb.is_default),
                         ("4096", ck_admin.ConfigSource.DYNAMIC_TOPIC_CONFIG.value, False, False))
        self.assertEqual([(s.name, s.value, s.source) for s in rb.synonyms.values()],
                         [("retention.bytes", "4096", TOPIC_CONFIG),
                          ("log.retention.bytes", "-1", DEFAULT)])
        sb = configs["segment.bytes"]
        self.assertTrue(sb.is_default)
        self.assertEqual(sb.source, ck_admin.ConfigSource.DEFAULT_CONFIG.value)
        # AlterConfigs on the broker.
        broker_res = ck_admin.ConfigResource(ck_admin.ConfigResource.Type.BROKER, "1",
                                             set_config={"log.cleaner.threads": "2"})
        client.alter_configs([broker_res])[broker_res].result(10)
        broker_res = ck_admin.ConfigResource(ck_admin.ConfigResource.Type.BROKER, "1")
        configs = client.describe_configs([broker_res])[broker_res].result(10)
        lct = configs["log.cleaner.threads"]
        self.assertEqual((lct.value, lct.source, lct.is_read_only),
                         ("2", ck_admin.ConfigSource.DYNAMIC_BROKER_CONFIG.value, False))
        self.assertTrue(configs["log.dirs"].is_read_only)
        bad = ck_admin.ConfigResource(ck_admin.ConfigResource.Type.BROKER, "1",
                                      set_config={"num.partitions": "3"})
        with self.assertRaises(Exception) as ctx:
            client.alter_configs([bad])[bad].result(10)
        self.assertIn("Cannot update these configs dynamically: [num.partitions]",
                      str(ctx.exception))


if __name__ == "__main__":
    unittest.main(verbosity=2)
