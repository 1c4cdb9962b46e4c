#!/usr/bin/python3
"""Kafka transactions over raw sockets against a real runnel process.

Uses raw_protocol_test.py's encoder, decoder and RecordBatch builder, with small encoders
for the transaction APIs defined here. Every response is decoded to its last byte and
checked against what Apache Kafka 4.x answers:

  * ApiVersions v3 advertises InitProducerId 0-5, AddPartitionsToTxn 0-5, AddOffsetsToTxn
    0-4, EndTxn 0-5, TxnOffsetCommit 0-5, DescribeProducers 0, DescribeTransactions 0,
    ListTransactions 0-1; its tagged fields carry supported_features transaction.version
    0-2 (tag 0) and finalized_features transaction.version at level 2 (tag 2; Kafka's
    min_version_level = max_version_level), a finalized epoch >= 0 (tag 1).
  * FindCoordinator v3 key_type=1 and v4 (batched keys): this broker.
  * InitProducerId with a transactional id: a new id -> epoch 0; again -> the same id,
    epoch 1; a timeout above transaction.max.timeout.ms (or 0) -> INVALID_TRANSACTION_TIMEOUT.
  * The classic flow (transactions v1: AddPartitionsToTxn v3, EndTxn v3, TxnOffsetCommit v3):
    EndTxn with no transaction -> INVALID_TXN_STATE; AddPartitionsToTxn with a wrong epoch
    -> PRODUCER_FENCED (INVALID_PRODUCER_EPOCH at v1), a wrong producer id ->
    INVALID_PRODUCER_ID_MAPPING, an unknown topic or partition -> UNKNOWN_TOPIC_OR_PARTITION
    with OPERATION_NOT_ATTEMPTED for the others; a transactional Produce to a partition never
    added -> INVALID_TXN_STATE (v9) / TRANSACTION_ABORTABLE (v11), nothing written.
  * Commit and abort: the last stable offset (Fetch v11 and ListOffsets v7 with
    isolation_level=1) stays at the first offset of the open transaction, also holding back
    a non-transactional record after it; the control batch (attributes transactional|control,
    key (0, type), value (0, coordinator epoch)); read_committed Fetch lists the aborted
    transaction [(producer id, first offset)] (read_uncommitted: null); TxnOffsetCommit then
    OffsetFetch v7 require_stable -> UNSTABLE_OFFSET_COMMIT while pending, the offset after a
    commit, the previous one after an abort.
  * Transactions v2 (KIP-890): Produce v12 to a partition never added -> accepted (implicit
    add), TxnOffsetCommit v5 without AddOffsetsToTxn -> accepted, EndTxn v5 -> NONE with the
    same producer id and the epoch + 1, markers written with the new epoch; the next
    transaction uses it; a batch with the old epoch -> INVALID_PRODUCER_EPOCH, EndTxn with it
    -> PRODUCER_FENCED; a retried EndTxn -> NONE with the current epoch; another commit ->
    INVALID_TXN_STATE.
  * DescribeTransactions v0, ListTransactions v0/v1 (state, producer id and duration filters,
    unknown states), DescribeProducers v0 (producer id, epoch, last sequence, last timestamp,
    coordinator epoch, current transaction start offset while open and -1 after).

Waits that Kafka needs too (markers are written after EndTxn answers) poll with a bound.
Standard library only; runs under /usr/bin/python3 with RUNNEL_BIN set.
"""

import os
import struct
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import raw_protocol_test as rp  # noqa: E402
from broker import Broker  # noqa: E402

FIND_COORDINATOR = 10
INIT_PRODUCER_ID = rp.INIT_PRODUCER_ID
ADD_PARTITIONS_TO_TXN = 24
ADD_OFFSETS_TO_TXN = 25
END_TXN = 26
TXN_OFFSET_COMMIT = 28
DESCRIBE_PRODUCERS = 61
DESCRIBE_TRANSACTIONS = 65
LIST_TRANSACTIONS = 66
rp.FIRST_FLEXIBLE.update({FIND_COORDINATOR: 3, ADD_PARTITIONS_TO_TXN: 3,
                          ADD_OFFSETS_TO_TXN: 3, END_TXN: 3, TXN_OFFSET_COMMIT: 3,
                          DESCRIBE_PRODUCERS: 0, DESCRIBE_TRANSACTIONS: 0,
                          LIST_TRANSACTIONS: 0})
init_producer_id = rp.init_producer_id

NONE = 0
UNKNOWN_TOPIC_OR_PARTITION = 3
COORDINATOR_LOAD_IN_PROGRESS = 14
COORDINATOR_NOT_AVAILABLE = 15
NOT_COORDINATOR = 16
INVALID_PRODUCER_EPOCH = 47
INVALID_TXN_STATE = 48
INVALID_PRODUCER_ID_MAPPING = 49
INVALID_TRANSACTION_TIMEOUT = 50
CONCURRENT_TRANSACTIONS = 51
OPERATION_NOT_ATTEMPTED = 55
UNSTABLE_OFFSET_COMMIT = 88
PRODUCER_FENCED = 90
TRANSACTIONAL_ID_NOT_FOUND = 105
TRANSACTION_ABORTABLE = 120
RETRIABLE = (COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR,
             CONCURRENT_TRANSACTIONS)

READ_UNCOMMITTED, READ_COMMITTED = 0, 1
LATEST = -1
ATTR_TRANSACTIONAL = 0x10
ATTR_CONTROL = 0x20
ABORT, COMMIT = 0, 1

TS = int(time.time() * 1000)
WAIT_S = 15.0

# ---------------------------------------------------------------------------
# Encoders and decoders of the transaction APIs (and versions of Produce, Fetch,
# ListOffsets and OffsetFetch that raw_protocol_test.py does not cover).


def find_coordinator(conn, version, keys, key_type=1):
    """v3: one key -> [(key, error, node_id, host, port)]; v4+: batched keys."""
    w = rp.Writer(version >= 3)
    if version <= 3:
        assert len(keys) == 1
        w.string(keys[0])
    w.i8(key_type)
    if version >= 4:
        w.array(keys, lambda w, k: w.string(k))
    w.tags()
    r = conn.call(FIND_COORDINATOR, version, bytes(w.buf))
    r.i32()  # throttle
    if version <= 3:
        error, _message, node, host, port = r.i16(), r.string(), r.i32(), r.string(), r.i32()
        out = [(keys[0], error, node, host, port)]
    else:
        def coordinator(r):
            c = (r.string(), r.i32(), r.string(), r.i32(), r.i16(), r.string())
            r.tags()
            return (c[0], c[4], c[1], c[2], c[3])
        out = r.array(coordinator)
    r.tags()
    rp.done(r)
    return out


def read_partition_errors(r):
    """[topic: name, [partition, error]] -> {(topic, partition): error}."""
    out = {}

    def part(r, name):
        p, e = r.i32(), r.i16()
        r.tags()
        out[(name, p)] = e

    def topic(r):
        name = r.string()
        r.array(lambda r: part(r, name))
        r.tags()

    r.array(topic)
    return out


def add_partitions_to_txn(conn, version, txn_id, pid, epoch, topics):
    """topics: {name: [partitions]} (v0-3, the client form) -> {(topic, partition): error}."""
    assert version <= 3
    w = rp.Writer(version >= 3)
    w.string(txn_id).i64(pid).i16(epoch)
    w.array(list(topics.items()),
            lambda w, t: w.string(t[0]).array(t[1], lambda w, p: w.i32(p)).tags())
    w.tags()
    r = conn.call(ADD_PARTITIONS_TO_TXN, version, bytes(w.buf))
    r.i32()
    out = read_partition_errors(r)
    r.tags()
    rp.done(r)
    return out


def add_offsets_to_txn(conn, version, txn_id, pid, epoch, group):
    w = rp.Writer(version >= 3)
    w.string(txn_id).i64(pid).i16(epoch).string(group).tags()
    r = conn.call(ADD_OFFSETS_TO_TXN, version, bytes(w.buf))
    r.i32()
    error = r.i16()
    r.tags()
    rp.done(r)
    return error


def end_txn(conn, version, txn_id, pid, epoch, commit):
    """-> (error, producer_id, epoch); the last two are -1 before v5."""
    w = rp.Writer(version >= 3)
    w.string(txn_id).i64(pid).i16(epoch).bool(commit).tags()
    r = conn.call(END_TXN, version, bytes(w.buf))
    r.i32()
    error = r.i16()
    new_pid, new_epoch = (r.i64(), r.i16()) if version >= 5 else (-1, -1)
    r.tags()
    rp.done(r)
    return error, new_pid, new_epoch


def txn_offset_commit(conn, version, txn_id, group, pid, epoch, offsets, generation=-1,
                      member="", instance=None):
    """offsets: [(topic, partition, offset)] -> {(topic, partition): error}."""
    w = rp.Writer(version >= 3)
    w.string(txn_id).string(group).i64(pid).i16(epoch)
    if version >= 3:
        w.i32(generation).string(member).string(instance)
    by_topic = {}
    for t, p, o in offsets:
        by_topic.setdefault(t, []).append((p, o))

    def partition(w, po):
        w.i32(po[0]).i64(po[1])
        if version >= 2:
            w.i32(-1)
        w.string("").tags()

    w.array(list(by_topic.items()), lambda w, t: w.string(t[0]).array(t[1], partition).tags())
    w.tags()
    r = conn.call(TXN_OFFSET_COMMIT, version, bytes(w.buf))
    r.i32()
    out = read_partition_errors(r)
    r.tags()
    rp.done(r)
    return out


def describe_transactions(conn, txn_ids):
    """-> {transactional_id: dict(error, state, timeout_ms, start_ms, producer_id, epoch,
    topics={topic: sorted partitions})}."""
    w = rp.Writer(True)
    w.array(txn_ids, lambda w, s: w.string(s)).tags()
    r = conn.call(DESCRIBE_TRANSACTIONS, 0, bytes(w.buf))
    r.i32()

    def topic(r):
        t = (r.string(), sorted(r.array(lambda r: r.i32())))
        r.tags()
        return t

    def state(r):
        s = {"error": r.i16(), "id": r.string(), "state": r.string(), "timeout_ms": r.i32(),
             "start_ms": r.i64(), "producer_id": r.i64(), "epoch": r.i16()}
        s["topics"] = dict(r.array(topic))
        r.tags()
        return s

    states = r.array(state)
    r.tags()
    rp.done(r)
    return {s.pop("id"): s for s in states}


def list_transactions(conn, version, states=(), producer_ids=(), duration_ms=-1):
    """-> (error, unknown state filters, sorted [(transactional_id, producer_id, state)])."""
    w = rp.Writer(True)
    w.array(list(states), lambda w, s: w.string(s))
    w.array(list(producer_ids), lambda w, p: w.i64(p))
    if version >= 1:
        w.i64(duration_ms)
    w.tags()
    r = conn.call(LIST_TRANSACTIONS, version, bytes(w.buf))
    r.i32()
    error = r.i16()
    unknown = r.array(lambda r: r.string())

    def state(r):
        s = (r.string(), r.i64(), r.string())
        r.tags()
        return s

    listed = r.array(state)
    r.tags()
    rp.done(r)
    return error, unknown, sorted(listed)


def describe_producers(conn, topic, partitions):
    """-> {partition: (error, [dict(producer_id, epoch, last_sequence, last_timestamp,
    coordinator_epoch, txn_start_offset)])}."""
    w = rp.Writer(True)
    w.array([topic], lambda w, t: w.string(t).array(partitions, lambda w, p: w.i32(p)).tags())
    w.tags()
    r = conn.call(DESCRIBE_PRODUCERS, 0, bytes(w.buf))
    r.i32()
    out = {}

    def producer(r):
        p = {"producer_id": r.i64(), "epoch": r.i32(), "last_sequence": r.i32(),
             "last_timestamp": r.i64(), "coordinator_epoch": r.i32(),
             "txn_start_offset": r.i64()}
        r.tags()
        return p

    def part(r):
        index, error, _message = r.i32(), r.i16(), r.string()
        out[index] = (error, r.array(producer))
        r.tags()

    def rtopic(r):
        assert r.string() == topic
        r.array(part)
        r.tags()

    r.array(rtopic)
    r.tags()
    rp.done(r)
    return out


def produce(conn, version, txn_id, topic, partition, batch, acks=-1):
    """Produce v3-v12 of one batch -> dict(error, base_offset, log_append_time,
    log_start_offset, message)."""
    w = rp.Writer(version >= 9)
    w.string(txn_id).i16(acks).i32(30000)
    w.array([topic], lambda w, t: w.string(t).array(
        [partition], lambda w, p: w.i32(p).records(batch).tags()).tags())
    w.tags()
    r = conn.call(rp.PRODUCE, version, bytes(w.buf))
    out = {}

    def part(r):
        index = r.i32()
        d = {"error": r.i16(), "base_offset": r.i64(), "log_append_time": r.i64(),
             "log_start_offset": r.i64(), "message": None}
        if version >= 8:
            r.array(lambda r: (r.i32(), r.string(), r.tags()))
            d["message"] = r.string()
        r.tags()
        out[index] = d

    def rtopic(r):
        assert r.string() == topic
        r.array(part)
        r.tags()

    r.array(rtopic)
    r.i32()
    r.tags()
    rp.done(r)
    return out[partition]


def fetch(conn, topic, partition, offset, isolation, version=11):
    """One partition of a Fetch with the isolation level -> the partition dict of
    rp.parse_fetch plus "batches" (parsed, no trailing partial batch)."""
    w = rp.Writer(version >= 12)
    w.i32(-1).i32(0).i32(1).i32(1 << 20).i8(isolation).i32(0).i32(-1)

    def part(w, _):
        w.i32(partition).i32(-1).i64(offset)
        if version >= 12:
            w.i32(-1)
        w.i64(-1).i32(1 << 20).tags()

    w.array([topic], lambda w, t: w.string(t).array([0], part).tags())
    w.array([], None).string("").tags()
    got = rp.parse_fetch(conn.call(rp.FETCH, version, bytes(w.buf)), version)
    assert got["error"] == NONE, got
    assert len(got["topics"]) == 1 and len(got["topics"][0][1]) == 1, got
    p = got["topics"][0][1][0]
    batches, trailing = rp.parse_batches(p["records"] or b"")
    assert trailing == 0, "partial batch in a 1 MiB fetch"
    p["batches"] = batches
    return p


def list_offset(conn, topic, partition, isolation, timestamp=LATEST, version=7):
    w = rp.Writer(version >= 6)
    w.i32(-1).i8(isolation)
    w.array([topic], lambda w, t: w.string(t).array(
        [partition], lambda w, p: w.i32(p).i32(-1).i64(timestamp).tags()).tags())
    w.tags()
    r = conn.call(rp.LIST_OFFSETS, version, bytes(w.buf))
    r.i32()
    out = []

    def rpart(r):
        out.append((r.i32(), r.i16(), r.i64(), r.i64(), r.i32()))
        r.tags()

    r.array(lambda r: (r.string(), r.array(rpart), r.tags()))
    r.tags()
    rp.done(r)
    assert len(out) == 1, out
    _, error, _, offset, _ = out[0]
    assert error == NONE, out
    return offset


def offset_fetch(conn, group, topic, partitions, require_stable):
    """OffsetFetch v7 -> {partition: (committed offset, error)}."""
    w = rp.Writer(True)
    w.string(group).array([topic], lambda w, t: w.string(t).array(
        partitions, lambda w, p: w.i32(p)).tags())
    w.bool(require_stable).tags()
    r = conn.call(rp.OFFSET_FETCH, 7, bytes(w.buf))
    r.i32()

    def part(r):
        out = (r.i32(), r.i64(), r.i32(), r.string(), r.i16())
        r.tags()
        return out

    results = r.array(lambda r: (r.string(), r.array(part), r.tags())[1])
    group_error = r.i16()
    r.tags()
    rp.done(r)
    assert group_error == NONE, group_error
    return {p: (o, e) for t in results for p, o, _, _, e in t}


def api_versions_with_features(conn):
    """ApiVersions v3 -> (error, {key: (min, max)}, {tag: decoded value})."""
    error, keys, raw_tags = rp.api_versions_with_tags(conn, 3)
    tags = {}
    for tag, raw in raw_tags.items():
        t = rp.Reader(raw, True)
        if tag == 0:
            tags[0] = {}
            for name, lo, hi, _ in t.array(lambda t: (t.string(), t.i16(), t.i16(), t.tags())):
                tags[0][name] = (lo, hi)
        elif tag == 1:
            tags[1] = t.i64()
        elif tag == 2:
            tags[2] = {}
            for name, hi, lo, _ in t.array(lambda t: (t.string(), t.i16(), t.i16(), t.tags())):
                tags[2][name] = (hi, lo)
        elif tag == 3:
            tags[3] = t.bool()
        else:
            continue
        rp.done(t)
    return error, keys, tags


def records(first, count, prefix=b"v"):
    return [(TS + first + i, b"k%d" % (first + i), prefix + b"%d" % (first + i))
            for i in range(count)]


def txn_batch(pid, epoch, seq, first, count, prefix=b"v"):
    return rp.build_batch(records(first, count, prefix), attributes=ATTR_TRANSACTIONAL,
                          producer_id=pid, producer_epoch=epoch, base_sequence=seq)


def control_record(batch):
    """-> (type, coordinator epoch) of a control batch, checking its layout."""
    assert batch["attributes"] & (ATTR_TRANSACTIONAL | ATTR_CONTROL) == \
        ATTR_TRANSACTIONAL | ATTR_CONTROL, batch
    assert len(batch["records"]) == 1, batch
    rec = batch["records"][0]
    version, kind = struct.unpack(">hh", rec["key"])
    assert version == 0, rec
    assert len(rec["value"]) == 6, rec
    value_version, coordinator_epoch = struct.unpack(">hi", rec["value"])
    assert value_version == 0, rec
    return kind, coordinator_epoch


# ---------------------------------------------------------------------------

class TransactionsRawTest(unittest.TestCase):
    def setUp(self):
        self.broker = Broker(overrides=["transaction.state.log.replication.factor=1",
                                        "transaction.state.log.min.isr=1"])
        self.broker.start()
        self.conn = rp.Connection(self.broker.host, self.broker.port)

    def tearDown(self):
        self.conn.close()
        alive = self.broker.alive()
        output = self.broker.output()
        self.broker.close()
        self.assertTrue(alive, "broker died; output:\n%s" % output)

    # helpers -------------------------------------------------------------

    def create(self, name, partitions=1):
        res = rp.create_topics(self.conn, 4, [(name, partitions, 1, {})])
        self.assertEqual(res[name]["error"], NONE, res[name])

    def until(self, fn, what, timeout=WAIT_S):
        """Polls fn() until it returns a true value (bounded); returns it."""
        deadline = time.monotonic() + timeout
        while True:
            got = fn()
            if got:
                return got
            if time.monotonic() > deadline:
                self.fail("gave up waiting (%.0f s) for %s" % (timeout, what))
            time.sleep(0.05)

    def retrying(self, fn, what, error_of=lambda r: r[0]):
        """Calls fn() again while it answers a retriable coordinator error (Kafka's
        coordinator answers those while it loads or completes a transaction)."""
        deadline = time.monotonic() + WAIT_S
        while True:
            got = fn()
            if error_of(got) not in RETRIABLE:
                return got
            if time.monotonic() > deadline:
                self.fail("%s still answers a retriable error after %.0f s: %r"
                          % (what, WAIT_S, got))
            time.sleep(0.05)

    def coordinator_ready(self, txn_id):
        res = self.retrying(lambda: find_coordinator(self.conn, 3, [txn_id])[0],
                            "FindCoordinator(%s)" % txn_id, error_of=lambda r: r[1])
        self.assertEqual(res[1], NONE, res)

    def init(self, txn_id, version=4, timeout_ms=60000):
        self.coordinator_ready(txn_id)
        return self.retrying(lambda: init_producer_id(self.conn, version, txn_id, timeout_ms),
                             "InitProducerId(%s)" % txn_id)

    def end(self, version, txn_id, pid, epoch, commit):
        return self.retrying(lambda: end_txn(self.conn, version, txn_id, pid, epoch, commit),
                             "EndTxn(%s)" % txn_id)

    def add(self, txn_id, pid, epoch, topics, version=3):
        return self.retrying(
            lambda: add_partitions_to_txn(self.conn, version, txn_id, pid, epoch, topics),
            "AddPartitionsToTxn(%s)" % txn_id,
            error_of=lambda r: CONCURRENT_TRANSACTIONS
            if CONCURRENT_TRANSACTIONS in r.values() else NONE)

    def wait_stable(self, topic, partition, lso):
        """Waits for the markers: Fetch read_committed reports last_stable_offset lso."""
        self.until(lambda: fetch(self.conn, topic, partition, 0, READ_COMMITTED)
                   ["last_stable_offset"] == lso, "%s-%d: last stable offset %d"
                   % (topic, partition, lso))

    def stable_offsets(self, group, topic, partitions):
        """OffsetFetch require_stable after the markers reached the group's offsets."""
        return self.until(
            lambda: (lambda got: got if all(e != UNSTABLE_OFFSET_COMMIT for _, e in got.values())
                     else None)(offset_fetch(self.conn, group, topic, partitions, True)),
            "%s: offsets of %s no longer pending" % (group, topic))

    def data(self, batches):
        """[(offset, value)] of the non-control batches."""
        return [(r["offset"], r["value"]) for b in batches if not b["attributes"] & ATTR_CONTROL
                for r in b["records"]]

    # tests -------------------------------------------------------------

    def test_api_versions_advertise_transactions(self):
        error, keys, tags = api_versions_with_features(self.conn)
        self.assertEqual(error, NONE)
        want = {INIT_PRODUCER_ID: (0, 5), ADD_PARTITIONS_TO_TXN: (0, 5),
                ADD_OFFSETS_TO_TXN: (0, 4), END_TXN: (0, 5), TXN_OFFSET_COMMIT: (0, 5),
                DESCRIBE_PRODUCERS: (0, 0), DESCRIBE_TRANSACTIONS: (0, 0),
                LIST_TRANSACTIONS: (0, 1)}
        self.assertEqual({k: keys.get(k) for k in want}, want)
        self.assertIn(0, tags, "no SupportedFeatures (tag 0) in ApiVersions v3")
        self.assertEqual(tags[0].get("transaction.version"), (0, 2), tags[0])
        self.assertIn(2, tags, "no FinalizedFeatures (tag 2) in ApiVersions v3")
        # (max_version_level, min_version_level): Kafka 4.x sets both to the level.
        self.assertEqual(tags[2].get("transaction.version"), (2, 2), tags[2])
        self.assertGreaterEqual(tags.get(1, -1), 0, "FinalizedFeaturesEpoch (tag 1)")
        self.assertFalse(tags.get(3, False), "ZkMigrationReady")

    def test_find_coordinator_for_transactions(self):
        brokers, _ = rp.metadata(self.conn, 12, [], False)
        node = brokers[0]["node_id"]
        want = (NONE, node, self.broker.host, self.broker.port)
        got = self.retrying(lambda: find_coordinator(self.conn, 3, ["fc-txn"])[0],
                            "FindCoordinator v3", error_of=lambda r: r[1])
        self.assertEqual(got, ("fc-txn",) + want)
        got = self.retrying(lambda: find_coordinator(self.conn, 4, ["fc-a", "fc-b"]),
                            "FindCoordinator v4",
                            error_of=lambda r: max((c[1] for c in r), default=NONE))
        self.assertEqual(sorted(got), [("fc-a",) + want, ("fc-b",) + want])

    def test_init_producer_id_with_transactional_id(self):
        self.coordinator_ready("ipi-a")
        self.assertEqual(self.init("ipi-a", timeout_ms=900001),
                         (INVALID_TRANSACTION_TIMEOUT, -1, -1))  # transaction.max.timeout.ms
        self.assertEqual(self.init("ipi-a", timeout_ms=0), (INVALID_TRANSACTION_TIMEOUT, -1, -1))
        error, pid, epoch = self.init("ipi-a")
        self.assertEqual((error, epoch), (NONE, 0))
        self.assertGreaterEqual(pid, 0)
        # Again (the producer restarted): the same id, the next epoch.
        self.assertEqual(self.init("ipi-a", version=0), (NONE, pid, 1))
        self.assertEqual(self.init("ipi-a", version=5), (NONE, pid, 2))
        error, other, epoch = self.init("ipi-b")
        self.assertEqual((error, epoch), (NONE, 0))
        self.assertNotEqual(other, pid)

    def test_classic_flow_errors(self):
        topic, txn = "cfe-topic", "cfe-txn"
        self.create(topic, 2)
        error, pid, epoch = self.init(txn)
        self.assertEqual(error, NONE)
        # Nothing to end (state Empty).
        for commit in (True, False):
            self.assertEqual(end_txn(self.conn, 3, txn, pid, epoch, commit),
                             (INVALID_TXN_STATE, -1, -1), "EndTxn commit=%s on Empty" % commit)
        # Fencing and mapping errors, for every partition named.
        self.assertEqual(add_partitions_to_txn(self.conn, 3, txn, pid, epoch + 1, {topic: [0, 1]}),
                         {(topic, 0): PRODUCER_FENCED, (topic, 1): PRODUCER_FENCED})
        # Before v2 the client cannot read PRODUCER_FENCED: INVALID_PRODUCER_EPOCH (KIP-588).
        self.assertEqual(add_partitions_to_txn(self.conn, 1, txn, pid, epoch + 1, {topic: [0]}),
                         {(topic, 0): INVALID_PRODUCER_EPOCH})
        self.assertEqual(add_partitions_to_txn(self.conn, 3, txn, pid + 1, epoch, {topic: [0]}),
                         {(topic, 0): INVALID_PRODUCER_ID_MAPPING})
        # An unknown topic or partition fails the whole request.
        self.assertEqual(add_partitions_to_txn(self.conn, 3, txn, pid, epoch,
                                               {topic: [0], "cfe-no-such-topic": [0]}),
                         {(topic, 0): OPERATION_NOT_ATTEMPTED,
                          ("cfe-no-such-topic", 0): UNKNOWN_TOPIC_OR_PARTITION})
        self.assertEqual(add_partitions_to_txn(self.conn, 3, txn, pid, epoch, {topic: [1, 7]}),
                         {(topic, 1): OPERATION_NOT_ATTEMPTED,
                          (topic, 7): UNKNOWN_TOPIC_OR_PARTITION})
        d = describe_transactions(self.conn, [txn])[txn]
        self.assertEqual((d["error"], d["state"], d["topics"]), (NONE, "Empty", {}))
        # A transactional batch for a partition that is not in the transaction (KIP-890
        # part 1 verification): INVALID_TXN_STATE up to Produce v10, TRANSACTION_ABORTABLE
        # from v11; nothing is written.
        for version, want in ((9, INVALID_TXN_STATE), (11, TRANSACTION_ABORTABLE)):
            got = produce(self.conn, version, txn, topic, 1, txn_batch(pid, epoch, 0, 0, 2))
            self.assertEqual((got["error"], got["base_offset"]), (want, -1),
                             "Produce v%d to a partition not added: %r" % (version, got))
        self.assertEqual(list_offset(self.conn, topic, 1, READ_UNCOMMITTED), 0)
        d = describe_transactions(self.conn, [txn])[txn]
        self.assertEqual((d["state"], d["topics"]), ("Empty", {}))

    def test_classic_commit_and_abort(self):
        topic, txn, group = "cca-topic", "cca-txn", "cca-group"
        self.create(topic)
        error, pid, epoch = self.init(txn)
        self.assertEqual((error, epoch), (NONE, 0))
        self.assertEqual(self.add(txn, pid, epoch, {topic: [0]}), {(topic, 0): NONE})
        got = produce(self.conn, 9, txn, topic, 0, txn_batch(pid, epoch, 0, 0, 3))
        self.assertEqual((got["error"], got["base_offset"]), (NONE, 0), got)
        # A non-transactional record after the open transaction's.
        got = produce(self.conn, 9, None, topic, 0, rp.build_batch([(TS + 50, b"plain", b"p")]))
        self.assertEqual((got["error"], got["base_offset"]), (NONE, 3), got)

        # The open transaction holds the last stable offset at its first offset, 0.
        self.assertEqual(list_offset(self.conn, topic, 0, READ_COMMITTED), 0)
        self.assertEqual(list_offset(self.conn, topic, 0, READ_UNCOMMITTED), 4)
        p = fetch(self.conn, topic, 0, 0, READ_COMMITTED)
        self.assertEqual((p["error"], p["high_watermark"], p["last_stable_offset"], p["aborted"],
                          p["batches"]), (NONE, 4, 0, [], []), p)
        p = fetch(self.conn, topic, 0, 0, READ_UNCOMMITTED)
        self.assertEqual((p["high_watermark"], p["last_stable_offset"], p["aborted"]),
                         (4, 0, None), p)
        self.assertEqual(self.data(p["batches"]),
                         [(0, b"v0"), (1, b"v1"), (2, b"v2"), (3, b"p")])
        first = p["batches"][0]
        self.assertEqual((first["attributes"] & (ATTR_TRANSACTIONAL | ATTR_CONTROL),
                          first["producer_id"], first["producer_epoch"], first["base_sequence"]),
                         (ATTR_TRANSACTIONAL, pid, epoch, 0))
        self.assertEqual(describe_producers(self.conn, topic, [0]),
                         {0: (NONE, [{"producer_id": pid, "epoch": epoch, "last_sequence": 2,
                                      "last_timestamp": TS + 2, "coordinator_epoch": -1,
                                      "txn_start_offset": 0}])})

        # Offsets in the transaction: pending until it ends.
        self.assertEqual(add_offsets_to_txn(self.conn, 3, txn, pid, epoch, group), NONE)
        self.assertEqual(txn_offset_commit(self.conn, 3, txn, group, pid, epoch, [(topic, 0, 3)]),
                         {(topic, 0): NONE})
        self.assertEqual(offset_fetch(self.conn, group, topic, [0], True),
                         {0: (-1, UNSTABLE_OFFSET_COMMIT)})
        self.assertEqual(offset_fetch(self.conn, group, topic, [0], False), {0: (-1, NONE)})

        self.assertEqual(self.end(3, txn, pid, epoch, True), (NONE, -1, -1))
        self.wait_stable(topic, 0, 5)
        self.assertEqual(list_offset(self.conn, topic, 0, READ_COMMITTED), 5)
        p = fetch(self.conn, topic, 0, 0, READ_COMMITTED)
        self.assertEqual((p["high_watermark"], p["last_stable_offset"], p["aborted"]),
                         (5, 5, []), p)
        self.assertEqual(self.data(p["batches"]),
                         [(0, b"v0"), (1, b"v1"), (2, b"v2"), (3, b"p")])
        marker = p["batches"][-1]
        self.assertEqual((marker["base_offset"], marker["last_offset_delta"],
                          marker["producer_id"], marker["producer_epoch"],
                          marker["base_sequence"]), (4, 0, pid, epoch, -1), marker)
        kind, coordinator_epoch = control_record(marker)
        self.assertEqual(kind, COMMIT)
        self.assertGreaterEqual(coordinator_epoch, 0)
        self.assertEqual(describe_producers(self.conn, topic, [0]),
                         {0: (NONE, [{"producer_id": pid, "epoch": epoch, "last_sequence": 2,
                                      "last_timestamp": marker["max_timestamp"],
                                      "coordinator_epoch": coordinator_epoch,
                                      "txn_start_offset": -1}])})
        self.assertEqual(self.stable_offsets(group, topic, [0]), {0: (3, NONE)})

        # A second transaction of the same epoch (transactions v1), aborted.
        self.assertEqual(self.add(txn, pid, epoch, {topic: [0]}), {(topic, 0): NONE})
        got = produce(self.conn, 9, txn, topic, 0, txn_batch(pid, epoch, 3, 3, 2, b"aborted"))
        self.assertEqual((got["error"], got["base_offset"]), (NONE, 5), got)
        self.assertEqual(list_offset(self.conn, topic, 0, READ_COMMITTED), 5)
        self.assertEqual(add_offsets_to_txn(self.conn, 3, txn, pid, epoch, group), NONE)
        self.assertEqual(txn_offset_commit(self.conn, 3, txn, group, pid, epoch,
                                           [(topic, 0, 99)]), {(topic, 0): NONE})
        self.assertEqual(offset_fetch(self.conn, group, topic, [0], True),
                         {0: (-1, UNSTABLE_OFFSET_COMMIT)})
        self.assertEqual(offset_fetch(self.conn, group, topic, [0], False), {0: (3, NONE)})
        self.assertEqual(self.end(3, txn, pid, epoch, False), (NONE, -1, -1))
        self.wait_stable(topic, 0, 8)
        for start in (0, 5):
            p = fetch(self.conn, topic, 0, start, READ_COMMITTED)
            self.assertEqual((p["high_watermark"], p["last_stable_offset"], p["aborted"]),
                             (8, 8, [(pid, 5)]), "read_committed from %d: %r" % (start, p))
        # The broker returns the aborted batch; the client drops it by the list.
        self.assertEqual(self.data(p["batches"]), [(5, b"aborted3"), (6, b"aborted4")])
        kind, _ = control_record(p["batches"][-1])
        self.assertEqual((p["batches"][-1]["base_offset"], kind), (7, ABORT))
        p = fetch(self.conn, topic, 0, 8, READ_COMMITTED)
        self.assertEqual((p["aborted"], p["batches"]), ([], []))
        p = fetch(self.conn, topic, 0, 0, READ_UNCOMMITTED)
        self.assertEqual((p["last_stable_offset"], p["aborted"]), (8, None))
        # The abort left the committed offset untouched.
        self.assertEqual(self.stable_offsets(group, topic, [0]), {0: (3, NONE)})
        self.assertEqual(describe_producers(self.conn, topic, [0])[0][1][0]["txn_start_offset"],
                         -1)

    def test_transactions_v2(self):
        topic, txn, group = "tv2-topic", "tv2-txn", "tv2-group"
        self.create(topic, 2)
        error, pid, epoch = self.init(txn, version=5)
        self.assertEqual((error, epoch), (NONE, 0))
        # Produce v12 adds the partition itself (no AddPartitionsToTxn).
        got = produce(self.conn, 12, txn, topic, 0, txn_batch(pid, 0, 0, 0, 2))
        self.assertEqual((got["error"], got["base_offset"]), (NONE, 0), got)
        d = describe_transactions(self.conn, [txn])[txn]
        self.assertEqual((d["error"], d["state"], d["producer_id"], d["epoch"], d["topics"]),
                         (NONE, "Ongoing", pid, 0, {topic: [0]}))
        # TxnOffsetCommit v5 adds the group's offsets itself (no AddOffsetsToTxn).
        self.assertEqual(txn_offset_commit(self.conn, 5, txn, group, pid, 0, [(topic, 0, 2)]),
                         {(topic, 0): NONE})
        self.assertEqual(offset_fetch(self.conn, group, topic, [0], True),
                         {0: (-1, UNSTABLE_OFFSET_COMMIT)})
        # EndTxn v5: the epoch is bumped by every transaction.
        self.assertEqual(self.end(5, txn, pid, 0, True), (NONE, pid, 1))
        self.wait_stable(topic, 0, 3)
        p = fetch(self.conn, topic, 0, 0, READ_UNCOMMITTED)
        self.assertEqual(self.data(p["batches"]), [(0, b"v0"), (1, b"v1")])
        marker = p["batches"][-1]
        self.assertEqual((marker["base_offset"], marker["producer_id"], marker["producer_epoch"],
                          control_record(marker)[0]), (2, pid, 1, COMMIT),
                         "the marker carries the new epoch")
        self.assertEqual(self.stable_offsets(group, topic, [0]), {0: (2, NONE)})
        # (Until the coordinator completes the commit, Kafka answers the next Produce v12
        # with a retriable NOT_ENOUGH_REPLICAS.)
        self.until(lambda: describe_transactions(self.conn, [txn])[txn]["state"]
                   == "CompleteCommit", "%s to reach CompleteCommit" % txn)

        # The next transaction runs on epoch 1, sequences from 0.
        got = produce(self.conn, 12, txn, topic, 0, txn_batch(pid, 1, 0, 2, 1))
        self.assertEqual((got["error"], got["base_offset"]), (NONE, 3), got)
        got = produce(self.conn, 12, txn, topic, 1, txn_batch(pid, 1, 0, 10, 1))
        self.assertEqual((got["error"], got["base_offset"]), (NONE, 0), got)
        d = describe_transactions(self.conn, [txn])[txn]
        self.assertEqual((d["state"], d["epoch"], d["topics"]), ("Ongoing", 1, {topic: [0, 1]}))
        # The old epoch is fenced.
        got = produce(self.conn, 12, txn, topic, 0, txn_batch(pid, 0, 2, 20, 1))
        self.assertEqual((got["error"], got["base_offset"]), (INVALID_PRODUCER_EPOCH, -1), got)
        self.assertEqual(end_txn(self.conn, 5, txn, pid, 0, False), (PRODUCER_FENCED, -1, -1))
        self.assertEqual(self.end(5, txn, pid, 1, True), (NONE, pid, 2))
        # A retry of that EndTxn (epoch 1 again): answered as done, with the current epoch.
        self.assertEqual(self.end(5, txn, pid, 1, True), (NONE, pid, 2))
        # Committing with the current epoch and no transaction: INVALID_TXN_STATE.
        self.assertEqual(self.end(5, txn, pid, 2, True), (INVALID_TXN_STATE, -1, -1))

        self.wait_stable(topic, 0, 5)
        self.wait_stable(topic, 1, 2)
        p = fetch(self.conn, topic, 0, 0, READ_COMMITTED)
        self.assertEqual((p["high_watermark"], p["aborted"]), (5, []))
        self.assertEqual(self.data(p["batches"]), [(0, b"v0"), (1, b"v1"), (3, b"v2")])
        self.assertEqual([(b["base_offset"], b["producer_epoch"], control_record(b)[0])
                          for b in p["batches"] if b["attributes"] & ATTR_CONTROL],
                         [(2, 1, COMMIT), (4, 2, COMMIT)])
        p = fetch(self.conn, topic, 1, 0, READ_COMMITTED)
        self.assertEqual(self.data(p["batches"]), [(0, b"v10")])
        # The marker's new epoch reset the producer's sequence state (ProducerStateEntry).
        (producer,) = describe_producers(self.conn, topic, [0])[0][1]
        self.assertEqual((producer["producer_id"], producer["epoch"], producer["last_sequence"],
                          producer["txn_start_offset"]), (pid, 2, -1, -1))
        d = describe_transactions(self.conn, [txn])[txn]
        self.assertEqual((d["state"], d["epoch"], d["topics"]), ("CompleteCommit", 2, {}))

    def test_describe_and_list_transactions(self):
        topic = "dlt-topic"
        self.create(topic, 2)
        got = describe_transactions(self.conn, ["dlt-unknown"])
        self.assertEqual(got["dlt-unknown"]["error"], TRANSACTIONAL_ID_NOT_FOUND)
        _, pid_a, _ = self.init("dlt-a", timeout_ms=45000)
        _, pid_b, _ = self.init("dlt-b", timeout_ms=30000)
        d = describe_transactions(self.conn, ["dlt-a"])["dlt-a"]
        self.assertEqual(d, {"error": NONE, "state": "Empty", "timeout_ms": 45000,
                             "start_ms": -1, "producer_id": pid_a, "epoch": 0, "topics": {}})
        self.assertEqual(self.add("dlt-a", pid_a, 0, {topic: [1, 0]}),
                         {(topic, 0): NONE, (topic, 1): NONE})
        got = describe_transactions(self.conn, ["dlt-a", "dlt-b", "dlt-unknown"])
        self.assertEqual(set(got), {"dlt-a", "dlt-b", "dlt-unknown"})
        a = got["dlt-a"]
        self.assertEqual((a["error"], a["state"], a["timeout_ms"], a["producer_id"], a["epoch"],
                          a["topics"]), (NONE, "Ongoing", 45000, pid_a, 0, {topic: [0, 1]}))
        self.assertGreater(a["start_ms"], 0)
        self.assertEqual((got["dlt-b"]["state"], got["dlt-b"]["timeout_ms"]), ("Empty", 30000))
        self.assertEqual(got["dlt-unknown"]["error"], TRANSACTIONAL_ID_NOT_FOUND)

        everything = [("dlt-a", pid_a, "Ongoing"), ("dlt-b", pid_b, "Empty")]
        for version in (0, 1):
            self.assertEqual(list_transactions(self.conn, version), (NONE, [], everything))
            self.assertEqual(list_transactions(self.conn, version, states=["Ongoing"]),
                             (NONE, [], everything[:1]))
            self.assertEqual(list_transactions(self.conn, version, states=["Empty", "Ongoing"]),
                             (NONE, [], everything))
            self.assertEqual(list_transactions(self.conn, version, producer_ids=[pid_b]),
                             (NONE, [], everything[1:]))
            self.assertEqual(list_transactions(self.conn, version, states=["Ongoing"],
                                               producer_ids=[pid_b]), (NONE, [], []))
            # Unknown states are reported; naming only those lists nothing.
            self.assertEqual(list_transactions(self.conn, version, states=["Bogus"]),
                             (NONE, ["Bogus"], []))
            self.assertEqual(list_transactions(self.conn, version, states=["Bogus", "Empty"]),
                             (NONE, ["Bogus"], everything[1:]))
        # v1 duration filter: transactions running longer than that many ms.
        time.sleep(0.05)
        self.assertEqual(list_transactions(self.conn, 1, states=["Ongoing"], duration_ms=3600000),
                         (NONE, [], []))
        self.assertEqual(list_transactions(self.conn, 1, states=["Ongoing"], duration_ms=10),
                         (NONE, [], everything[:1]))
        self.assertEqual(list_transactions(self.conn, 1, states=["Ongoing"], duration_ms=-1),
                         (NONE, [], everything[:1]))

        self.assertEqual(self.end(3, "dlt-a", pid_a, 0, False), (NONE, -1, -1))
        self.until(lambda: describe_transactions(self.conn, ["dlt-a"])["dlt-a"]["state"]
                   == "CompleteAbort", "dlt-a to reach CompleteAbort")
        d = describe_transactions(self.conn, ["dlt-a"])["dlt-a"]
        self.assertEqual((d["producer_id"], d["epoch"], d["topics"]), (pid_a, 0, {}))
        self.assertEqual(list_transactions(self.conn, 0, states=["CompleteAbort"]),
                         (NONE, [], [("dlt-a", pid_a, "CompleteAbort")]))

    def test_describe_producers(self):
        topic, txn = "dp-topic", "dp-txn"
        self.create(topic, 2)
        self.assertEqual(describe_producers(self.conn, topic, [0, 1]),
                         {0: (NONE, []), 1: (NONE, [])})
        got = describe_producers(self.conn, topic, [5])
        self.assertEqual(got[5][0], UNKNOWN_TOPIC_OR_PARTITION)
        _, pid, epoch = self.init(txn)
        self.assertEqual(self.add(txn, pid, epoch, {topic: [1]}), {(topic, 1): NONE})
        for seq, first in ((0, 0), (2, 2)):
            got = produce(self.conn, 9, txn, topic, 1, txn_batch(pid, epoch, seq, first, 2))
            self.assertEqual((got["error"], got["base_offset"]), (NONE, first), got)
        self.assertEqual(describe_producers(self.conn, topic, [0, 1]),
                         {0: (NONE, []),
                          1: (NONE, [{"producer_id": pid, "epoch": epoch, "last_sequence": 3,
                                      "last_timestamp": TS + 3, "coordinator_epoch": -1,
                                      "txn_start_offset": 0}])})
        self.assertEqual(self.end(3, txn, pid, epoch, True), (NONE, -1, -1))
        self.wait_stable(topic, 1, 5)
        marker = fetch(self.conn, topic, 1, 4, READ_UNCOMMITTED)["batches"][0]
        _, coordinator_epoch = control_record(marker)
        self.assertEqual(describe_producers(self.conn, topic, [1]),
                         {1: (NONE, [{"producer_id": pid, "epoch": epoch, "last_sequence": 3,
                                      "last_timestamp": marker["max_timestamp"],
                                      "coordinator_epoch": coordinator_epoch,
                                      "txn_start_offset": -1}])})


if __name__ == "__main__":
    unittest.main(verbosity=2)
