#!/usr/bin/python3
"""Kafka transactions with confluent-kafka (librdkafka) against a real runnel process.

Each test starts its own broker on a fixed port (so that clients find it again after a
restart), with transaction.state.log.replication.factor=1 and min.isr=1 as a single-node
Kafka is configured. Record positions are exact: a transaction writes one marker per
partition it touched, after its last record; every wait is bounded. Checked:

  * Interleaved transactions: 6 transactions over 3 partitions, alternately committed and
    aborted, each touching 2 or 3 partitions, with a non-transactional record per partition
    written in the middle of each. A read_committed consumer gets exactly the committed and
    the plain records, a read_uncommitted one every data record, both with their exact
    offsets and in order; neither ever gets a marker offset (each transaction left one per
    partition it touched), their positions and get_watermark_offsets reach the log end,
    and the delivery reports carry the same offsets.
  * Consume-transform-produce: N records per partition of an input topic are read
    (read_committed, no auto commit) and transformed into an output topic in transactions
    that also carry the consumer's positions (send_offsets_to_transaction); one batch in the
    middle is aborted, its offsets never become the group's committed offsets, and it is
    reprocessed from them. The output read with read_committed holds every transformed
    input exactly once, in order; the group's committed offsets end at N; the aborted
    outputs exist only for read_uncommitted.
  * Zombie fencing: a second producer with the same transactional.id calls
    init_transactions while the first has a transaction open; that transaction is aborted,
    the first producer's next produce fails and its commit (or the abort librdkafka then
    asks for) fails with a fatal fencing error (_FENCED); the second producer's
    transaction commits and read_committed sees only its records.
  * A transaction across a broker restart: SIGTERM then commit (every record once, also on a
    partition first added after the restart), SIGTERM then abort (none of them; the
    producer's next transaction commits), and SIGKILL with the transaction open: after the
    restart a read_committed consumer stops at the last stable offset (the transaction's first
    offset; a later non-transactional record waits too) until the producer commits, then
    gets them all.
  * transaction.timeout.ms: the broker (transaction.abort.timed.out.transaction.cleanup.
    interval.ms=500) aborts an idle transaction by itself; read_committed reaches the log end
    without its records, and the producer's commit fails with a fatal fencing error.

Runs under /usr/bin/python3 (confluent-kafka on librdkafka 2.0.2) with RUNNEL_BIN set.
"""

import os
import socket
import sys
import time
import unittest
import uuid

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from broker import Broker  # noqa: E402

BASE_OVERRIDES = ["transaction.state.log.replication.factor=1",
                  "transaction.state.log.min.isr=1"]
API_TIMEOUT = 30.0  # init/commit/abort_transaction, send_offsets_to_transaction
READ_TIMEOUT = 30.0
# librdkafka reports every fencing error (PRODUCER_FENCED, INVALID_PRODUCER_EPOCH) as
# _FENCED, fatal (rd_kafka_txn_normalize_err, rd_kafka_idemp_check_error).
FENCED = (KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    """A producer with its delivery reports and the errors of its error_cb."""

    def __init__(self, bootstrap, conf=None):
        self.delivered = []  # (partition, offset, key, value)
        self.failed = []  # (partition, key, error)
        self.errors = []
        c = {"bootstrap.servers": bootstrap, "linger.ms": 5, "reconnect.backoff.ms": 100,
             "reconnect.backoff.max.ms": 1000, "error_cb": self.errors.append}
        c.update(conf or {})
        self.p = Producer(c)

    def _report(self, err, msg):
        if err is not None:
            self.failed.append((msg.partition(), msg.key(), err))
        else:
            self.delivered.append((msg.partition(), msg.offset(), msg.key(), msg.value()))

    def produce(self, topic, partition, key, value):
        self.p.produce(topic, value=value, key=key, partition=partition,
                       on_delivery=self._report)

    def flush(self, timeout=30.0):
        return self.p.flush(timeout)

    def fatal_errors(self):
        return [e for e in self.errors if e.fatal()]


class TransactionsTest(unittest.TestCase):
    def setUp(self):
        self.broker = None
        self.port = None

    def tearDown(self):
        if self.broker is not None:
            alive = self.broker.alive()
            output = self.broker.output()
            self.broker.close()
            self.assertTrue(alive, "broker died; output:\n%s" % output)

    # helpers -------------------------------------------------------------

    def start_broker(self, *overrides):
        self.port = free_port()
        self.broker = Broker(overrides=["listeners=PLAINTEXT://127.0.0.1:%d" % self.port]
                             + BASE_OVERRIDES + list(overrides))
        self.broker.start()

    def restart_broker(self, how):
        if how == "SIGTERM":
            self.assertEqual(self.broker.stop(), 0, self.broker.output())
        else:
            self.broker.kill()
        self.broker.start()
        self.assertEqual(self.broker.port, self.port)

    def create_topic(self, name, partitions):
        admin = AdminClient({"bootstrap.servers": self.broker.bootstrap})
        for _, f in admin.create_topics([NewTopic(name, partitions, 1)]).items():
            f.result(30)

    def producer(self, transactional_id=None, conf=None):
        c = dict(conf or {})
        if transactional_id is not None:
            c["transactional.id"] = transactional_id
        return Client(self.broker.bootstrap, c)

    def consumer(self, isolation, group=None):
        return Consumer({"bootstrap.servers": self.broker.bootstrap,
                         "group.id": group or "reader-" + uuid.uuid4().hex,
                         "enable.auto.commit": False,
                         "isolation.level": isolation,
                         "auto.offset.reset": "earliest",
                         "fetch.wait.max.ms": 100,
                         "reconnect.backoff.max.ms": 1000})

    @staticmethod
    def positions(consumer, topic, partitions):
        return {tp.partition: tp.offset
                for tp in consumer.position([TopicPartition(topic, p) for p in partitions])}

    def poll_into(self, consumer, got, timeout):
        msg = consumer.poll(timeout)
        if msg is None:
            return
        if msg.error():
            if msg.error().code() == KafkaError._PARTITION_EOF:
                return
            self.fail("consumer error: %s" % msg.error())
        got.setdefault(msg.partition(), []).append((msg.offset(), msg.key(), msg.value()))

    def consume_until(self, consumer, topic, ends, got, timeout=READ_TIMEOUT):
        """Polls into got until the consumer's position is ends[p] on every partition, or the
        timeout; returns the positions."""
        deadline = time.monotonic() + timeout
        while True:
            pos = self.positions(consumer, topic, list(ends))
            if pos == ends or time.monotonic() > deadline:
                return pos
            self.poll_into(consumer, got, 0.1)

    def read(self, topic, isolation, ends):
        """Reads the partitions of ends from offset 0 up to ends[p] ->
        ({partition: [(offset, key, value)]}, positions, {partition: watermarks})."""
        c = self.consumer(isolation)
        try:
            c.assign([TopicPartition(topic, p, 0) for p in ends])
            got = {p: [] for p in ends}
            pos = self.consume_until(c, topic, ends, got)
            marks = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10,
                                                cached=False) for p in ends}
        finally:
            c.close()
        return got, pos, marks

    def check_read(self, topic, isolation, ends, want):
        got, pos, marks = self.read(topic, isolation, ends)
        self.assertEqual(got, want, "%s records of %s" % (isolation, topic))
        self.assertEqual(pos, ends, "%s consumer positions on %s" % (isolation, topic))
        # get_watermark_offsets asks with the consumer's isolation level: the high mark is
        # the last stable offset for read_committed, equal to the log end here.
        self.assertEqual(marks, {p: (0, e) for p, e in ends.items()},
                         "%s watermarks of %s" % (isolation, topic))

    def fenced(self, client, what):
        """commit_transaction() must fail; if librdkafka first reports an abortable error,
        the abort it asks for must fail. Returns the (fatal, fencing) error."""
        try:
            client.p.commit_transaction(API_TIMEOUT)
        except KafkaException as e:
            err = e.args[0]
        else:
            self.fail("%s: commit_transaction succeeded" % what)
        if not err.fatal() and err.txn_requires_abort():
            try:
                client.p.abort_transaction(API_TIMEOUT)
            except KafkaException as e:
                err = e.args[0]
            else:
                self.fail("%s: commit failed with %s but the abort succeeded" % (what, err))
        self.assert_fencing(err, what)
        return err

    def assert_fencing(self, err, what):
        self.assertTrue(err.fatal(), "%s: %s is not fatal" % (what, err))
        self.assertIn(err.code(), FENCED, "%s: %s is no fencing error" % (what, err))

    # 1. interleaved commits and aborts ------------------------------------------------

    def test_interleaved_commits_and_aborts(self):
        self.start_broker()
        topic, parts = "txn-interleaved", [0, 1, 2]
        self.create_topic(topic, len(parts))
        txn = self.producer("interleaved-txn")
        plain = self.producer()
        txn.p.init_transactions(API_TIMEOUT)

        nxt = {p: 0 for p in parts}
        every = {p: [] for p in parts}  # (offset, key, value) of every data record
        committed = {p: [] for p in parts}
        markers = {p: [] for p in parts}
        txn_records = []
        for t in range(6):
            commit = t % 2 == 0
            touched = parts if t % 3 == 0 else [p for p in parts if p != t % 3]
            kind = b"commit" if commit else b"abort"
            txn.p.begin_transaction()
            for half in (0, 1):
                for p in touched:
                    for i in range(2):
                        key, value = b"t%d-p%d-%d" % (t, p, 2 * half + i), b"%s-%d" % (kind, t)
                        txn.produce(topic, p, key, value)
                        rec = (nxt[p], key, value)
                        nxt[p] += 1
                        every[p].append(rec)
                        txn_records.append((p,) + rec)
                        if commit:
                            committed[p].append(rec)
                self.assertEqual(txn.flush(), 0)
                if half == 0:
                    # A non-transactional record inside the open transaction.
                    for p in parts:
                        key = b"plain-t%d-p%d" % (t, p)
                        plain.produce(topic, p, key, b"plain")
                        rec = (nxt[p], key, b"plain")
                        nxt[p] += 1
                        every[p].append(rec)
                        committed[p].append(rec)
                    self.assertEqual(plain.flush(), 0)
            if commit:
                txn.p.commit_transaction(API_TIMEOUT)
            else:
                txn.p.abort_transaction(API_TIMEOUT)
            for p in touched:
                markers[p].append(nxt[p])
                nxt[p] += 1

        self.assertEqual((txn.failed, plain.failed), ([], []))
        self.assertEqual(sorted(txn.delivered), sorted(txn_records))
        self.assertEqual(txn.fatal_errors(), [])
        self.assertEqual({p: len(m) for p, m in markers.items()}, {0: 6, 1: 4, 2: 4})
        ends = dict(nxt)
        for isolation, want in (("read_committed", committed), ("read_uncommitted", every)):
            got, pos, marks = self.read(topic, isolation, ends)
            for p in parts:
                seen = [o for o, _, _ in got[p]]
                self.assertEqual([o for o in seen if o in markers[p]], [],
                                 "%s consumer got marker offsets of partition %d"
                                 % (isolation, p))
            if isolation == "read_uncommitted":
                # Every offset but the markers': the gaps are exactly the markers.
                self.assertEqual({p: sorted(set(range(ends[p])) - set(markers[p]))
                                  for p in parts},
                                 {p: [o for o, _, _ in got[p]] for p in parts})
            self.assertEqual(got, want, "%s records" % isolation)
            self.assertEqual(pos, ends, "%s positions" % isolation)
            self.assertEqual(marks, {p: (0, ends[p]) for p in parts}, "%s watermarks" % isolation)

    # 2. consume-transform-produce -------------------------------------------------------

    def test_consume_transform_produce(self):
        self.start_broker()
        src, dst, group = "ctp-in", "ctp-out", "ctp-group"
        n, parts, batch_size, abort_at = 40, [0, 1], 15, 2
        self.create_topic(src, len(parts))
        self.create_topic(dst, len(parts))
        plain = self.producer()
        for i in range(n):
            for p in parts:
                plain.produce(src, p, b"k%d-%d" % (p, i), b"%d" % i)
        self.assertEqual(plain.flush(), 0)

        consumer = self.consumer("read_committed", group)
        tps = [TopicPartition(src, p) for p in parts]
        consumer.assign(tps)
        txn = self.producer("ctp-txn")
        txn.p.init_transactions(API_TIMEOUT)
        done = {}  # partition -> offset committed with the last committed transaction
        touched = []  # (committed?, partitions) per transaction
        aborted = []  # (partition, value) of the outputs of the aborted transaction
        batches = 0
        deadline = time.monotonic() + 45
        try:
            while done != {p: n for p in parts}:
                self.assertLess(time.monotonic(), deadline,
                                "transform loop did not finish; committed %r" % done)
                msgs = consumer.consume(num_messages=batch_size, timeout=0.5)
                for m in msgs:
                    if m.error():
                        self.fail("consumer error: %s" % m.error())
                if not msgs:
                    continue
                txn.p.begin_transaction()
                last = {}
                for m in msgs:
                    txn.produce(dst, m.partition(), m.key(), b"T(" + m.value() + b")")
                    last[m.partition()] = m.offset()
                # The positions of the partitions read in this batch (the others' committed
                # offsets stand).
                positions = consumer.position([TopicPartition(src, p) for p in sorted(last)])
                sent = {tp.partition: tp.offset for tp in positions}
                self.assertEqual(sent, {p: o + 1 for p, o in last.items()}, "positions")
                txn.p.send_offsets_to_transaction(positions, consumer.consumer_group_metadata(),
                                                  API_TIMEOUT)
                if batches == abort_at:
                    # Written, then aborted.
                    self.assertEqual(txn.flush(), 0)
                    txn.p.abort_transaction(API_TIMEOUT)
                    touched.append((False, {m.partition() for m in msgs}))
                    aborted = [(m.partition(), b"T(" + m.value() + b")") for m in msgs]
                    # The offsets sent in the aborted transaction never show.
                    now = {tp.partition: tp.offset for tp in consumer.committed(tps, timeout=10)}
                    self.assertEqual(now, {p: done.get(p, -1001) for p in parts},
                                     "committed offsets right after the abort (sent %r)" % sent)
                    for p in parts:
                        consumer.seek(TopicPartition(src, p, max(now[p], 0)))
                else:
                    txn.p.commit_transaction(API_TIMEOUT)
                    touched.append((True, {m.partition() for m in msgs}))
                    done.update(sent)
                batches += 1
            final = {tp.partition: tp.offset for tp in consumer.committed(tps, timeout=10)}
        finally:
            consumer.close()
        self.assertGreater(batches, abort_at + 1, "the aborted batch was not in the middle")
        self.assertTrue(aborted)
        self.assertEqual(final, {p: n for p in parts}, "group's committed offsets")
        self.assertEqual(txn.failed, [])
        self.assertEqual(txn.fatal_errors(), [])

        # Output log: every record produced (delivered, aborted ones included) plus a
        # marker per partition per transaction that touched it.
        ends = {p: len([d for d in txn.delivered if d[0] == p])
                + len([1 for _, ps in touched if p in ps]) for p in parts}
        got, pos, _ = self.read(dst, "read_committed", ends)
        self.assertEqual(pos, ends)
        for p in parts:
            self.assertEqual([(k, v) for _, k, v in got[p]],
                             [(b"k%d-%d" % (p, i), b"T(%d)" % i) for i in range(n)],
                             "read_committed output of partition %d" % p)
            offsets = [o for o, _, _ in got[p]]
            self.assertEqual(offsets, sorted(set(offsets)))
        got, pos, _ = self.read(dst, "read_uncommitted", ends)
        self.assertEqual(pos, ends)
        for p in parts:
            values = [v for _, _, v in got[p]]
            self.assertEqual(sorted(values),
                             sorted([b"T(%d)" % i for i in range(n)]
                                    + [v for q, v in aborted if q == p]),
                             "read_uncommitted output of partition %d" % p)

    # 3. zombie fencing ------------------------------------------------------------------

    def test_zombie_is_fenced_by_init_transactions(self):
        self.start_broker()
        topic, txn_id = "txn-fencing", "fencing-txn"
        self.create_topic(topic, 1)
        a = self.producer(txn_id)
        a.p.init_transactions(API_TIMEOUT)
        a.p.begin_transaction()
        for i in range(3):
            a.produce(topic, 0, b"a%d" % i, b"zombie-%d" % i)
        self.assertEqual(a.flush(), 0)
        self.assertEqual([d[1] for d in a.delivered], [0, 1, 2])

        b = self.producer(txn_id)
        b.p.init_transactions(API_TIMEOUT)  # aborts A's transaction, bumps the epoch
        for i in range(3, 5):
            a.produce(topic, 0, b"a%d" % i, b"zombie-%d" % i)
        # librdkafka 2.0.2 makes the failed Produce (INVALID_PRODUCER_EPOCH) a fatal _FENCED
        # error, which flush() raises; the commit then fails with it too.
        try:
            a.flush(15)
        except KafkaException as e:
            self.assert_fencing(e.args[0], "the fenced producer's flush")
        err = self.fenced(a, "the fenced producer")
        self.assertEqual([d[1] for d in a.delivered], [0, 1, 2],
                         "the fenced producer's later records were written (%s)" % err)

        b.p.begin_transaction()
        for i in range(3):
            b.produce(topic, 0, b"b%d" % i, b"new-%d" % i)
        b.p.commit_transaction(API_TIMEOUT)
        self.assertEqual(b.fatal_errors(), [])
        # 0-2 A's, 3 the abort marker of the fence, 4-6 B's, 7 B's commit marker.
        self.assertEqual([d[1] for d in b.delivered], [4, 5, 6])
        ends = {0: 8}
        self.check_read(topic, "read_committed", ends,
                        {0: [(4 + i, b"b%d" % i, b"new-%d" % i) for i in range(3)]})
        self.check_read(topic, "read_uncommitted", ends,
                        {0: [(i, b"a%d" % i, b"zombie-%d" % i) for i in range(3)]
                         + [(4 + i, b"b%d" % i, b"new-%d" % i) for i in range(3)]})

    # 4. broker restarts mid-transaction -------------------------------------------------

    def restart_mid_transaction(self, commit):
        self.start_broker()
        topic = "txn-restart-" + ("commit" if commit else "abort")
        self.create_topic(topic, 2)
        txn = self.producer(topic + "-txn")
        txn.p.init_transactions(API_TIMEOUT)
        txn.p.begin_transaction()
        before = [(0, i, b"k%d" % i, b"before-%d" % i) for i in range(3)]
        for p, _, k, v in before:
            txn.produce(topic, p, k, v)
        self.assertEqual(txn.flush(), 0)
        self.restart_broker("SIGTERM")
        # More records, to the partition already in the transaction and to a new one.
        after = [(0, 3 + i, b"k%d" % (3 + i), b"after-%d" % i) for i in range(3)] + \
                [(1, i, b"n%d" % i, b"new-partition-%d" % i) for i in range(3)]
        for p, _, k, v in after:
            txn.produce(topic, p, k, v)
        self.assertEqual(txn.flush(), 0, "records after the restart not delivered")
        self.assertEqual(sorted(txn.delivered), sorted(before + after))
        if commit:
            txn.p.commit_transaction(API_TIMEOUT)
            ends = {0: 7, 1: 4}
            want = {p: [(o, k, v) for q, o, k, v in before + after if q == p] for p in (0, 1)}
        else:
            txn.p.abort_transaction(API_TIMEOUT)
            # The producer goes on with a committed transaction after the aborted one.
            txn.p.begin_transaction()
            txn.produce(topic, 0, b"x", b"after-abort")
            txn.p.commit_transaction(API_TIMEOUT)
            ends = {0: 9, 1: 4}  # 6 abort marker, 7 the record, 8 its commit marker
            want = {0: [(7, b"x", b"after-abort")], 1: []}
        self.assertEqual(txn.failed, [])
        self.assertEqual(txn.fatal_errors(), [])
        self.check_read(topic, "read_committed", ends, want)
        got, _, _ = self.read(topic, "read_uncommitted", ends)
        self.assertEqual(sorted((p, o, k, v) for p, rs in got.items() for o, k, v in rs),
                         sorted(txn.delivered), "read_uncommitted: every record once")

    def test_sigterm_restart_mid_transaction_then_commit(self):
        self.restart_mid_transaction(commit=True)

    def test_sigterm_restart_mid_transaction_then_abort(self):
        self.restart_mid_transaction(commit=False)

    def test_sigkill_mid_transaction_holds_back_read_committed(self):
        self.start_broker()
        topic = "txn-sigkill"
        self.create_topic(topic, 1)
        txn = self.producer("sigkill-txn")
        plain = self.producer()
        txn.p.init_transactions(API_TIMEOUT)
        txn.p.begin_transaction()
        for i in range(2):
            txn.produce(topic, 0, b"c%d" % i, b"committed-%d" % i)
        txn.p.commit_transaction(API_TIMEOUT)  # 0-1, marker 2
        txn.p.begin_transaction()
        for i in range(3):
            txn.produce(topic, 0, b"o%d" % i, b"open-%d" % i)  # 3-5
        self.assertEqual(txn.flush(), 0)
        plain.produce(topic, 0, b"plain", b"after-open")  # 6
        self.assertEqual(plain.flush(), 0)
        self.restart_broker("SIGKILL")

        committed = [(0, b"c0", b"committed-0"), (1, b"c1", b"committed-1")]
        held = [(3 + i, b"o%d" % i, b"open-%d" % i) for i in range(3)] + \
               [(6, b"plain", b"after-open")]
        rc = self.consumer("read_committed")
        try:
            rc.assign([TopicPartition(topic, 0, 0)])
            got = {0: []}
            pos = self.consume_until(rc, topic, {0: 3}, got)
            # Stalled at the last stable offset (3): poll a while, nothing more comes.
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                self.poll_into(rc, got, 0.1)
            self.assertEqual(got, {0: committed}, "read_committed with the transaction open")
            self.assertEqual(self.positions(rc, topic, [0]), {0: 3})
            self.assertEqual(pos, {0: 3})
            self.assertEqual(rc.get_watermark_offsets(TopicPartition(topic, 0), timeout=10,
                                                      cached=False), (0, 3))
            self.check_read(topic, "read_uncommitted", {0: 7}, {0: committed + held})

            txn.p.commit_transaction(API_TIMEOUT)  # marker 7
            pos = self.consume_until(rc, topic, {0: 8}, got)
            self.assertEqual(got, {0: committed + held})
            self.assertEqual(pos, {0: 8})
        finally:
            rc.close()
        self.assertEqual((txn.failed, plain.failed), ([], []))
        self.assertEqual(txn.fatal_errors(), [])
        self.check_read(topic, "read_committed", {0: 8}, {0: committed + held})

    # 5. transaction.timeout.ms ----------------------------------------------------------

    def test_transaction_timeout_aborts_proactively(self):
        self.start_broker("transaction.abort.timed.out.transaction.cleanup.interval.ms=500")
        topic = "txn-timeout"
        self.create_topic(topic, 1)
        txn = self.producer("timeout-txn", {"transaction.timeout.ms": 2000})
        plain = self.producer()
        txn.p.init_transactions(API_TIMEOUT)
        txn.p.begin_transaction()
        for i in range(3):
            txn.produce(topic, 0, b"t%d" % i, b"timed-out-%d" % i)  # 0-2
        self.assertEqual(txn.flush(), 0)
        plain.produce(topic, 0, b"plain", b"after")  # 3
        self.assertEqual(plain.flush(), 0)
        # The producer idles. The broker aborts the transaction (marker 4): read_committed
        # reaches the log end with only the plain record.
        rc = self.consumer("read_committed")
        try:
            rc.assign([TopicPartition(topic, 0, 0)])
            got = {0: []}
            pos = self.consume_until(rc, topic, {0: 5}, got, timeout=20)
        finally:
            rc.close()
        self.assertEqual(got, {0: [(3, b"plain", b"after")]})
        self.assertEqual(pos, {0: 5}, "the timed-out transaction was not aborted")
        self.check_read(topic, "read_uncommitted", {0: 5},
                        {0: [(i, b"t%d" % i, b"timed-out-%d" % i) for i in range(3)]
                         + [(3, b"plain", b"after")]})
        self.fenced(txn, "the timed-out producer")
        self.check_read(topic, "read_committed", {0: 5}, {0: [(3, b"plain", b"after")]})


if __name__ == "__main__":
    unittest.main(verbosity=2)
