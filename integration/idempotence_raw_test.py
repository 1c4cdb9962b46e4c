#!/usr/bin/python3
"""Idempotent producers over raw sockets against a real runnel process.

Uses raw_protocol_test.py's encoder, decoder and RecordBatch builder. Checks, against
what Apache Kafka 4.x answers:

  * ApiVersions advertises InitProducerId 0-5 (v6 is unstable in Kafka).
  * InitProducerId v0 and v4 (flexible): null transactional.id -> NONE, a new producer
    id, epoch 0; ids increase; an empty transactional.id -> INVALID_REQUEST; another
    transactional.id -> a new id at epoch 0, then the same id with the epoch bumped (the
    transaction coordinator; transactions_raw_test.py covers the rest); a
    producer id without an epoch (v3+) -> INVALID_REQUEST; errors carry id and epoch -1.
  * Produce v7 with idempotent batches: in sequence -> appended; a retry of one of the
    last 5 batches -> NONE with its original base offset (and its max timestamp as
    log_append_time, as Kafka), nothing written twice; a gap -> OUT_OF_ORDER_SEQUENCE_NUMBER;
    an older epoch -> INVALID_PRODUCER_EPOCH; a new epoch not starting at sequence 0 ->
    OUT_OF_ORDER_SEQUENCE_NUMBER; a producer id with sequence -1 -> INVALID_RECORD.
  * Across a SIGTERM restart and a SIGKILL restart: producer ids keep increasing (a new
    block of 1000 each start), the producer's state survives (a retry of its last batch
    is still a duplicate, a gap still a gap), and the log holds every record once.

Standard library only; runs under /usr/bin/python3 with RUNNEL_BIN set.
"""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import raw_protocol_test as rp  # noqa: E402
from broker import Broker  # noqa: E402

INIT_PRODUCER_ID = rp.INIT_PRODUCER_ID
init_producer_id = rp.init_producer_id

NONE = 0
INVALID_REQUEST = 42
OUT_OF_ORDER_SEQUENCE_NUMBER = 45
INVALID_PRODUCER_EPOCH = 47
INVALID_RECORD = 87

# Record timestamps: now, since producer.id.expiration.ms (a day) counts from a producer's
# last batch timestamp and a loaded snapshot drops the producers that expired.
TS = int(time.time() * 1000)


def records(first, count):
    return [(TS + first + i, b"k%d" % (first + i), b"v%d" % (first + i)) for i in range(count)]


def idempotent_batch(pid, epoch, seq, first, count):
    """count records numbered from `first`, with sequence `seq` onwards."""
    return rp.build_batch(records(first, count), producer_id=pid, producer_epoch=epoch,
                          base_sequence=seq)


class IdempotenceRawTest(unittest.TestCase):
    def setUp(self):
        self.broker = Broker(overrides=["log.segment.bytes=1048576"])
        self.broker.start()
        self.conn = self.connect()

    def tearDown(self):
        self.conn.close()
        self.broker.close()

    def connect(self):
        return rp.Connection(self.broker.host, self.broker.port)

    def produce(self, topic, batch):
        return rp.produce(self.conn, 7, topic, 0, batch)

    def expect(self, resp, error, base_offset, log_append_time=-1, what="", log_start=0):
        self.assertEqual((resp["error"], resp["base_offset"], resp["log_append_time"],
                          resp["log_start_offset"]),
                         (error, base_offset, log_append_time, log_start), what)

    def values(self, topic):
        """Every record value of partition 0, in offset order, with its offset."""
        out = []
        offset = 0
        while True:
            resp = rp.fetch(self.conn, 11, [(topic, [(0, offset, 1 << 20)])])
            part = resp["topics"][0][1][0]
            self.assertEqual(part["error"], NONE, part)
            batches, _ = rp.parse_batches(part["records"])
            if not batches:
                return out, part["high_watermark"]
            for b in batches:
                for rec in b["records"]:
                    out.append((rec["offset"], rec["value"].decode()))
                offset = b["base_offset"] + b["last_offset_delta"] + 1

    def test_api_versions_advertises_init_producer_id_0_to_5(self):
        error, keys = rp.api_versions(self.conn, 3)
        self.assertEqual(error, NONE)
        self.assertEqual(keys[INIT_PRODUCER_ID], (0, 5))

    def test_init_producer_id(self):
        error, first, epoch = init_producer_id(self.conn, 0)
        self.assertEqual((error, epoch), (NONE, 0))
        self.assertEqual(first, 0)  # the first block starts at 0, as Kafka's
        self.assertEqual(init_producer_id(self.conn, 4), (NONE, first + 1, 0))
        self.assertEqual(init_producer_id(self.conn, 1), (NONE, first + 2, 0))
        # v3+ with the producer's current id and epoch (KIP-360): still a new id, epoch 0,
        # as Kafka's coordinator answers a null transactional.id.
        self.assertEqual(init_producer_id(self.conn, 4, producer_id=first, epoch=0),
                         (NONE, first + 3, 0))
        self.assertEqual(init_producer_id(self.conn, 4, producer_id=first, epoch=-1),
                         (INVALID_REQUEST, -1, -1))
        self.assertEqual(init_producer_id(self.conn, 3, producer_id=-1, epoch=2),
                         (INVALID_REQUEST, -1, -1))
        for epoch, version in enumerate((0, 4)):
            self.assertEqual(init_producer_id(self.conn, version, ""), (INVALID_REQUEST, -1, -1))
            self.assertEqual(init_producer_id(self.conn, version, "my-txn"),
                             (NONE, first + 4, epoch))
        self.assertEqual(init_producer_id(self.conn, 4), (NONE, first + 5, 0))

    def test_duplicates_gaps_and_epochs(self):
        topic = "idem-raw"
        rp.create_topics(self.conn, 4, [(topic, 1, 1, {})])
        _, pid, epoch = init_producer_id(self.conn, 4)
        # Records 0-2 (seq 0-2), 3-4 (seq 3-4), 5-7 (seq 5-7).
        b0 = idempotent_batch(pid, epoch, 0, 0, 3)
        b1 = idempotent_batch(pid, epoch, 3, 3, 2)
        b2 = idempotent_batch(pid, epoch, 5, 5, 3)
        self.expect(self.produce(topic, b0), NONE, 0)
        self.expect(self.produce(topic, b1), NONE, 3)
        # A retry of the last batch, and of an earlier one: the original offsets, and the
        # original max timestamp as log_append_time (Kafka's duplicate answer).
        self.expect(self.produce(topic, b1), NONE, 3, TS + 4, "retry of the last batch")
        self.expect(self.produce(topic, b0), NONE, 0, TS + 2, "retry of an earlier batch")
        self.expect(self.produce(topic, b2), NONE, 5)
        # A gap: sequence 10 after 7.
        self.expect(self.produce(topic, idempotent_batch(pid, epoch, 10, 8, 1)),
                    OUT_OF_ORDER_SEQUENCE_NUMBER, -1, what="gap")
        # The same sequence range under a newer epoch is no duplicate: it must start at 0.
        self.expect(self.produce(topic, idempotent_batch(pid, epoch + 1, 5, 8, 3)),
                    OUT_OF_ORDER_SEQUENCE_NUMBER, -1, what="new epoch at sequence 5")
        self.expect(self.produce(topic, idempotent_batch(pid, epoch + 1, 0, 8, 2)), NONE, 8)
        # The old epoch is fenced now.
        self.expect(self.produce(topic, idempotent_batch(pid, epoch, 8, 10, 1)),
                    INVALID_PRODUCER_EPOCH, -1, what="stale epoch")
        # A producer id needs a sequence (Kafka's LogValidator).
        self.expect(self.produce(topic, idempotent_batch(pid, epoch + 1, -1, 10, 1)),
                    INVALID_RECORD, -1, what="sequence -1", log_start=-1)
        values, hw = self.values(topic)
        self.assertEqual(hw, 10)
        self.assertEqual(values, [(i, "v%d" % i) for i in range(10)])

    def test_restarts_keep_producer_ids_increasing_and_producer_state(self):
        topic = "idem-restart"
        rp.create_topics(self.conn, 4, [(topic, 1, 1, {})])
        _, pid, epoch = init_producer_id(self.conn, 4)
        self.assertEqual(pid, 0)
        self.expect(self.produce(topic, idempotent_batch(pid, epoch, 0, 0, 2)), NONE, 0)
        last = idempotent_batch(pid, epoch, 2, 2, 3)
        self.expect(self.produce(topic, last), NONE, 2)

        # SIGTERM: a clean stop; the state comes back from the snapshot.
        self.conn.close()
        self.assertEqual(self.broker.stop(), 0, self.broker.output())
        self.broker.restart()
        self.conn = self.connect()
        self.assertEqual(init_producer_id(self.conn, 4), (NONE, 1000, 0))
        self.assertEqual(init_producer_id(self.conn, 0), (NONE, 1001, 0))
        self.expect(self.produce(topic, last), NONE, 2, TS + 4, "retry after SIGTERM")
        self.expect(self.produce(topic, idempotent_batch(pid, epoch, 6, 5, 1)),
                    OUT_OF_ORDER_SEQUENCE_NUMBER, -1, what="gap after SIGTERM")
        last = idempotent_batch(pid, epoch, 5, 5, 2)
        self.expect(self.produce(topic, last), NONE, 5)

        # SIGKILL: the state is rebuilt from the snapshot and the log after it.
        self.conn.close()
        self.broker.kill()
        self.broker.restart()
        self.conn = self.connect()
        self.assertEqual(init_producer_id(self.conn, 4), (NONE, 2000, 0))
        self.expect(self.produce(topic, last), NONE, 5, TS + 6, "retry after SIGKILL")
        self.expect(self.produce(topic, idempotent_batch(pid, epoch, 8, 7, 1)),
                    OUT_OF_ORDER_SEQUENCE_NUMBER, -1, what="gap after SIGKILL")
        self.expect(self.produce(topic, idempotent_batch(pid, epoch, 7, 7, 1)), NONE, 7)
        values, hw = self.values(topic)
        self.assertEqual(hw, 8)
        self.assertEqual(values, [(i, "v%d" % i) for i in range(8)])


if __name__ == "__main__":
    unittest.main(verbosity=2)
