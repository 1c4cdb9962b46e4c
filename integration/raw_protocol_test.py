#!/usr/bin/python3
"""Kafka's wire protocol over raw sockets against a real runnel process.

No Kafka client library: a small encoder/decoder lives in this file (big-endian
ints, classic and compact strings/arrays/bytes, unsigned varints, tagged-field
sections, request header v1/v2, response header v0/v1) and a RecordBatch v2
builder/parser with a table-driven CRC-32C. Every response is decoded to its
last byte (trailing bytes fail the test) and checked field by field against
what Apache Kafka 4.x answers:

  * ListOffsets v7/v1: earliest, latest, max timestamp (-3), timestamp lookups
    (including a batch whose largest timestamp is not its last record), not
    found, unknown partition/topic, duplicate partition.
  * Fetch v11: long poll woken by a produce, max_wait expiry with nothing (or
    less than min_bytes) to read, OFFSET_OUT_OF_RANGE, partition_max_bytes and
    max_bytes (KIP-74), fetch sessions (KIP-227: the broker may decline to
    create one; an incremental fetch in an unknown session -> 70; a full fetch
    naming a session is served).
  * Fetch v13 by topic id (ids from CreateTopics v7 and Metadata v12), unknown
    topic id -> 100.
  * Produce v7: bad CRC, too large (broker and topic limit), unknown
    topic/partition, acks=5, acks=-1, acks=0 (no response; an error closes the
    connection), Produce v2 (advertised, refused: connection closed).
  * CreateTopics v4 (validate_only, bad replication factor/partitions/name,
    duplicate), DeleteTopics v4, CreatePartitions v1.

Standard library only; runs under /usr/bin/python3 with RUNNEL_BIN set.
"""

import os
import select
import socket
import struct
import sys
import time
import unittest
import uuid
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from broker import Broker  # noqa: E402

REPLY_TIMEOUT = 15.0
MESSAGE_MAX_BYTES = 2000  # broker-wide limit for this test's broker

# API keys and the first flexible version of each (header v2 / response header v1).
PRODUCE, FETCH, LIST_OFFSETS, METADATA = 0, 1, 2, 3
OFFSET_COMMIT, OFFSET_FETCH, DELETE_RECORDS = 8, 9, 21
API_VERSIONS, CREATE_TOPICS, DELETE_TOPICS, CREATE_PARTITIONS = 18, 19, 20, 37
INIT_PRODUCER_ID = 22
FIRST_FLEXIBLE = {PRODUCE: 9, FETCH: 12, LIST_OFFSETS: 6, METADATA: 9, OFFSET_COMMIT: 8,
                  DELETE_RECORDS: 2,
                  OFFSET_FETCH: 6, API_VERSIONS: 3, CREATE_TOPICS: 5, DELETE_TOPICS: 4,
                  CREATE_PARTITIONS: 2, INIT_PRODUCER_ID: 2}

# Error codes.
NONE = 0
OFFSET_OUT_OF_RANGE = 1
CORRUPT_MESSAGE = 2
UNKNOWN_TOPIC_OR_PARTITION = 3
MESSAGE_TOO_LARGE = 10
INVALID_TOPIC_EXCEPTION = 17
INVALID_REQUIRED_ACKS = 21
TOPIC_ALREADY_EXISTS = 36
INVALID_PARTITIONS = 37
INVALID_REPLICATION_FACTOR = 38
INVALID_REQUEST = 42
POLICY_VIOLATION = 44
ILLEGAL_GENERATION = 22
GROUP_ID_NOT_FOUND = 69
FETCH_SESSION_ID_NOT_FOUND = 70
UNKNOWN_TOPIC_ID = 100

EARLIEST, LATEST, MAX_TIMESTAMP = -2, -1, -3

# ---------------------------------------------------------------------------
# CRC-32C (Castagnoli), reflected polynomial 0x82F63B78, table driven.

def _crc32c_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C_TABLE = _crc32c_table()


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    table = _CRC32C_TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


# ---------------------------------------------------------------------------
# Primitive encoding.

def uvarint(n):
    assert n >= 0
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def varint(n):
    """ZigZag signed varint/varlong (64-bit)."""
    return uvarint(((n << 1) ^ (n >> 63)) & 0xFFFFFFFFFFFFFFFF)


class Writer:
    """Builds a message body; flexible selects compact encodings and tag sections."""

    def __init__(self, flexible=False):
        self.buf = bytearray()
        self.flexible = flexible

    def raw(self, b):
        self.buf += b
        return self

    def i8(self, v):
        return self.raw(struct.pack(">b", v))

    def bool(self, v):
        return self.raw(b"\x01" if v else b"\x00")

    def i16(self, v):
        return self.raw(struct.pack(">h", v))

    def i32(self, v):
        return self.raw(struct.pack(">i", v))

    def i64(self, v):
        return self.raw(struct.pack(">q", v))

    def uuid(self, v):
        assert len(v) == 16
        return self.raw(v)

    def uvarint(self, v):
        return self.raw(uvarint(v))

    def string(self, s):
        if s is None:
            return self.uvarint(0) if self.flexible else self.i16(-1)
        b = s.encode() if isinstance(s, str) else s
        if self.flexible:
            self.uvarint(len(b) + 1)
        else:
            self.i16(len(b))
        return self.raw(b)

    def bytes(self, b):
        if b is None:
            return self.uvarint(0) if self.flexible else self.i32(-1)
        if self.flexible:
            self.uvarint(len(b) + 1)
        else:
            self.i32(len(b))
        return self.raw(b)

    records = bytes

    def array(self, items, fn):
        if items is None:
            return self.uvarint(0) if self.flexible else self.i32(-1)
        if self.flexible:
            self.uvarint(len(items) + 1)
        else:
            self.i32(len(items))
        for item in items:
            fn(self, item)
        return self

    def tags(self):
        """An empty tagged-field section (flexible versions only)."""
        if self.flexible:
            self.uvarint(0)
        return self


class Reader:
    def __init__(self, data, flexible=False):
        self.data = bytes(data)
        self.pos = 0
        self.flexible = flexible

    def remaining(self):
        return len(self.data) - self.pos

    def take(self, n):
        if n < 0 or self.pos + n > len(self.data):
            raise AssertionError("response truncated: need %d bytes at %d of %d"
                                 % (n, self.pos, len(self.data)))
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def _unpack(self, fmt, n):
        return struct.unpack(fmt, self.take(n))[0]

    def i8(self):
        return self._unpack(">b", 1)

    def bool(self):
        v = self._unpack(">B", 1)
        if v not in (0, 1):
            raise AssertionError("bool byte %d" % v)
        return v == 1

    def i16(self):
        return self._unpack(">h", 2)

    def i32(self):
        return self._unpack(">i", 4)

    def i64(self):
        return self._unpack(">q", 8)

    def uuid(self):
        return self.take(16)

    def uvarint(self):
        shift = 0
        value = 0
        for _ in range(10):
            b = self.take(1)[0]
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value
            shift += 7
        raise AssertionError("uvarint longer than 10 bytes")

    def _length(self, wide):
        if self.flexible:
            return self.uvarint() - 1
        return self.i32() if wide else self.i16()

    def string(self):
        n = self._length(False)
        if n < -1:
            raise AssertionError("string length %d" % n)
        return None if n == -1 else self.take(n).decode()

    def bytes(self):
        n = self._length(True)
        if n < -1:
            raise AssertionError("bytes length %d" % n)
        return None if n == -1 else self.take(n)

    records = bytes

    def array(self, fn):
        n = self._length(True)
        if n < -1:
            raise AssertionError("array length %d" % n)
        return None if n == -1 else [fn(self) for _ in range(n)]

    def tags(self):
        """Reads a tagged-field section: {tag: raw bytes}; empty outside flexible versions."""
        out = {}
        if not self.flexible:
            return out
        last = -1
        for _ in range(self.uvarint()):
            tag = self.uvarint()
            if tag <= last:
                raise AssertionError("tags out of order: %d after %d" % (tag, last))
            last = tag
            out[tag] = self.take(self.uvarint())
        return out


# ---------------------------------------------------------------------------
# RecordBatch v2.

def encode_record(offset_delta, timestamp_delta, key, value, headers=()):
    body = bytearray(b"\x00")  # attributes
    body += varint(timestamp_delta)
    body += varint(offset_delta)
    for b in (key, value):
        if b is None:
            body += varint(-1)
        else:
            body += varint(len(b)) + b
    body += varint(len(headers))
    for hk, hv in headers:
        hk = hk.encode()
        body += varint(len(hk)) + hk
        body += varint(-1) if hv is None else varint(len(hv)) + hv
    return varint(len(body)) + bytes(body)


def build_batch(records, base_offset=0, attributes=0, producer_id=-1, producer_epoch=-1,
                base_sequence=-1, partition_leader_epoch=-1):
    """records: [(timestamp, key, value[, headers])] -> one uncompressed magic-2 batch."""
    assert records
    base_ts = records[0][0]
    max_ts = max(r[0] for r in records)
    encoded = b"".join(encode_record(i, r[0] - base_ts, r[1], r[2], r[3] if len(r) > 3 else ())
                       for i, r in enumerate(records))
    after_crc = struct.pack(">hiqqqhii", attributes, len(records) - 1, base_ts, max_ts,
                            producer_id, producer_epoch, base_sequence, len(records)) + encoded
    batch_length = 4 + 1 + 4 + len(after_crc)
    return struct.pack(">qiibI", base_offset, batch_length, partition_leader_epoch, 2,
                       crc32c(after_crc)) + after_crc


def _read_varint(data, pos):
    shift = value = 0
    while True:
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            break
        shift += 7
    return (value >> 1) ^ -(value & 1), pos


def parse_batches(data):
    """-> (list of batch dicts, number of trailing bytes that do not form a whole batch).

    Every whole batch must be magic 2, uncompressed, with a valid CRC-32C."""
    batches = []
    pos = 0
    while len(data) - pos >= 12:
        base_offset, batch_length = struct.unpack_from(">qi", data, pos)
        end = pos + 12 + batch_length
        if batch_length < 49 or end > len(data):
            break  # truncated trailing batch (allowed in a Fetch response)
        (ple, magic, crc, attributes, last_offset_delta, base_ts, max_ts, pid, pepoch, bseq,
         count) = struct.unpack_from(">ibIhiqqqhii", data, pos + 12)
        if magic != 2:
            raise AssertionError("batch at %d has magic %d" % (base_offset, magic))
        if crc32c(data[pos + 21:end]) != crc:
            raise AssertionError("batch at %d has a bad CRC-32C" % base_offset)
        if attributes & 7:
            raise AssertionError("batch at %d is compressed (%d)" % (base_offset, attributes & 7))
        records = []
        rpos = pos + 61
        for _ in range(count):
            length, rpos = _read_varint(data, rpos)
            rend = rpos + length
            rpos += 1  # attributes
            ts_delta, rpos = _read_varint(data, rpos)
            off_delta, rpos = _read_varint(data, rpos)
            fields = []
            for _ in range(2):
                n, rpos = _read_varint(data, rpos)
                if n < 0:
                    fields.append(None)
                else:
                    fields.append(bytes(data[rpos:rpos + n]))
                    rpos += n
            nh, rpos = _read_varint(data, rpos)
            headers = []
            for _ in range(nh):
                n, rpos = _read_varint(data, rpos)
                hk = bytes(data[rpos:rpos + n]).decode()
                rpos += n
                n, rpos = _read_varint(data, rpos)
                hv = None if n < 0 else bytes(data[rpos:rpos + n])
                rpos += max(n, 0)
                headers.append((hk, hv))
            if rpos != rend:
                raise AssertionError("record length mismatch in batch at %d" % base_offset)
            records.append({"offset": base_offset + off_delta, "timestamp": base_ts + ts_delta,
                            "key": fields[0], "value": fields[1], "headers": headers})
        if rpos != end:
            raise AssertionError("batch at %d: %d bytes after its records"
                                 % (base_offset, end - rpos))
        batches.append({"base_offset": base_offset, "size": end - pos,
                        "partition_leader_epoch": ple, "attributes": attributes,
                        "last_offset_delta": last_offset_delta, "base_timestamp": base_ts,
                        "max_timestamp": max_ts, "producer_id": pid, "producer_epoch": pepoch,
                        "base_sequence": bseq, "records": records})
        pos = end
    return batches, len(data) - pos


# ---------------------------------------------------------------------------
# Connection.

def read_exact(sock, n):
    buf = b""
    while len(buf) < n:
        try:
            chunk = sock.recv(n - len(buf))
        except ConnectionResetError:
            return None
        if not chunk:
            return None
        buf += chunk
    return buf


class Connection:
    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port), timeout=REPLY_TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.next_cid = 1

    def close(self):
        self.sock.close()

    def send(self, api_key, version, body, client_id=b"raw-protocol-test"):
        """Sends one request (body: bytes); returns its correlation id."""
        cid = self.next_cid
        self.next_cid += 1
        flexible = version >= FIRST_FLEXIBLE[api_key]
        header = struct.pack(">hhih", api_key, version, cid, len(client_id)) + client_id
        if flexible:
            header += b"\x00"  # header v2: empty tagged section
        payload = header + body
        self.sock.sendall(struct.pack(">i", len(payload)) + payload)
        return cid

    def read_frame(self):
        size = read_exact(self.sock, 4)
        if size is None:
            return None
        (n,) = struct.unpack(">i", size)
        if n < 4 or n > 64 * 1024 * 1024:
            raise AssertionError("response frame with bad length %d" % n)
        return read_exact(self.sock, n)

    def receive(self, api_key, version, cid):
        """Reads the response to request cid; returns a Reader on its body."""
        payload = self.read_frame()
        if payload is None:
            raise AssertionError("connection closed instead of a response to api %d v%d"
                                 % (api_key, version))
        flexible = version >= FIRST_FLEXIBLE[api_key]
        r = Reader(payload, flexible)
        got = r.i32()
        if got != cid:
            raise AssertionError("correlation id %d, expected %d" % (got, cid))
        if flexible and api_key != API_VERSIONS:
            r.tags()  # response header v1
        return r

    def call(self, api_key, version, body):
        return self.receive(api_key, version, self.send(api_key, version, body))


def done(r):
    """Asserts the whole response body was consumed."""
    if r.remaining():
        raise AssertionError("%d unexpected trailing bytes in response" % r.remaining())


# ---------------------------------------------------------------------------
# Requests and responses.

def create_topics(conn, version, topics, validate_only=False, timeout_ms=30000):
    """topics: [(name, partitions, replication_factor, {config: value})].

    -> {name: dict(error, message, topic_id, num_partitions, replication_factor)}"""
    w = Writer(version >= FIRST_FLEXIBLE[CREATE_TOPICS])

    def topic(w, t):
        name, partitions, rf, configs = t
        w.string(name).i32(partitions).i16(rf)
        w.array([], None)  # assignments
        w.array(sorted(configs.items()), lambda w, kv: w.string(kv[0]).string(kv[1]).tags())
        w.tags()

    w.array(topics, topic).i32(timeout_ms).bool(validate_only).tags()
    r = conn.call(CREATE_TOPICS, version, bytes(w.buf))
    r.i32()  # throttle

    def result(r):
        out = {"name": r.string()}
        out["topic_id"] = r.uuid() if version >= 7 else None
        out["error"] = r.i16()
        out["message"] = r.string()
        if version >= 5:
            out["num_partitions"] = r.i32()
            out["replication_factor"] = r.i16()
            out["configs"] = r.array(lambda r: (r.string(), r.string(), r.bool(), r.i8(),
                                                r.bool(), r.tags())[:2])
            out["tags"] = r.tags()
        return out

    results = r.array(result)
    r.tags()
    done(r)
    return {t["name"]: t for t in results}


def metadata(conn, version, topics, allow_auto_topic_creation=True):
    """topics: list of names or None (all) -> (brokers, {name: topic dict})."""
    w = Writer(version >= FIRST_FLEXIBLE[METADATA])
    if version >= 10:
        w.array(topics, lambda w, t: w.uuid(b"\x00" * 16).string(t).tags())
    else:
        w.array(topics, lambda w, t: w.string(t))
    if version >= 4:
        w.bool(allow_auto_topic_creation)
    if 8 <= version <= 10:
        w.bool(False)
    if version >= 8:
        w.bool(False)
    w.tags()
    r = conn.call(METADATA, version, bytes(w.buf))
    if version >= 3:
        r.i32()

    def broker(r):
        b = {"node_id": r.i32(), "host": r.string(), "port": r.i32()}
        if version >= 1:
            b["rack"] = r.string()
        r.tags()
        return b

    brokers = r.array(broker)
    if version >= 2:
        r.string()  # cluster id
    if version >= 1:
        r.i32()  # controller id

    def partition(r):
        p = {"error": r.i16(), "index": r.i32(), "leader": r.i32()}
        p["leader_epoch"] = r.i32() if version >= 7 else -1
        p["replicas"] = r.array(lambda r: r.i32())
        p["isr"] = r.array(lambda r: r.i32())
        if version >= 5:
            p["offline"] = r.array(lambda r: r.i32())
        r.tags()
        return p

    def topic(r):
        t = {"error": r.i16(), "name": r.string()}
        t["topic_id"] = r.uuid() if version >= 10 else None
        if version >= 1:
            t["internal"] = r.bool()
        t["partitions"] = r.array(partition)
        if version >= 8:
            r.i32()
        r.tags()
        return t

    topics_out = r.array(topic)
    if 8 <= version <= 10:
        r.i32()
    if version >= 13:
        r.i16()
    r.tags()
    done(r)
    return brokers, {t["name"]: t for t in topics_out}


def produce(conn, version, topic, partition, records, acks=1, timeout_ms=30000):
    """-> dict(error, base_offset, log_append_time, log_start_offset); v7 layout."""
    resp = produce_multi(conn, version, [(topic, [(partition, records)])], acks, timeout_ms)
    return resp[(topic, partition)]


def produce_multi(conn, version, topic_data, acks=1, timeout_ms=30000):
    assert 3 <= version <= 8
    w = Writer(False)
    w.string(None).i16(acks).i32(timeout_ms)
    w.array(topic_data, lambda w, t: w.string(t[0]).array(
        t[1], lambda w, p: w.i32(p[0]).records(p[1])))
    r = conn.call(PRODUCE, version, bytes(w.buf))
    out = {}

    def topic(r):
        name = r.string()

        def part(r):
            index = r.i32()
            out[(name, index)] = {"error": r.i16(), "base_offset": r.i64(),
                                  "log_append_time": r.i64(), "log_start_offset": r.i64()}
            if version >= 8:
                out[(name, index)]["record_errors"] = r.array(lambda r: (r.i32(), r.string()))
                out[(name, index)]["message"] = r.string()
        r.array(part)

    r.array(topic)
    r.i32()  # throttle
    done(r)
    return out


def list_offsets(conn, version, topic, partitions_and_ts):
    """partitions_and_ts: [(partition, timestamp)] -> [dict(partition, error, timestamp,
    offset, leader_epoch)] in response order."""
    flexible = version >= FIRST_FLEXIBLE[LIST_OFFSETS]
    w = Writer(flexible)
    w.i32(-1)
    if version >= 2:
        w.i8(0)

    def part(w, p):
        w.i32(p[0])
        if version >= 4:
            w.i32(-1)
        w.i64(p[1])
        w.tags()

    w.array([topic], lambda w, t: w.string(t).array(partitions_and_ts, part).tags())
    if version >= 10:
        w.i32(30000)
    w.tags()
    r = conn.call(LIST_OFFSETS, version, bytes(w.buf))
    if version >= 2:
        r.i32()
    out = []

    def rpart(r):
        p = {"partition": r.i32(), "error": r.i16(), "timestamp": r.i64(), "offset": r.i64()}
        if version >= 4:
            p["leader_epoch"] = r.i32()
        r.tags()
        out.append(p)

    def rtopic(r):
        name = r.string()
        if name != topic:
            raise AssertionError("ListOffsets answered for topic %r, asked %r" % (name, topic))
        r.array(rpart)
        r.tags()

    r.array(rtopic)
    r.tags()
    done(r)
    return out


def fetch_request(version, topics, max_wait_ms=0, min_bytes=1, max_bytes=50 * 1024 * 1024,
                  session_id=0, session_epoch=-1):
    """topics: [(name or 16-byte id, [(partition, fetch_offset, partition_max_bytes)])]."""
    flexible = version >= FIRST_FLEXIBLE[FETCH]
    w = Writer(flexible)
    if version <= 14:
        w.i32(-1)  # replica id
    w.i32(max_wait_ms).i32(min_bytes).i32(max_bytes).i8(0).i32(session_id).i32(session_epoch)

    def part(w, p):
        w.i32(p[0]).i32(-1).i64(p[1])
        if version >= 12:
            w.i32(-1)  # last fetched epoch
        w.i64(-1).i32(p[2]).tags()

    def topic(w, t):
        if version >= 13:
            w.uuid(t[0])
        else:
            w.string(t[0])
        w.array(t[1], part).tags()

    w.array(topics, topic)
    w.array([], None)  # forgotten topics
    w.string("")  # rack id
    w.tags()
    return bytes(w.buf)


def parse_fetch(r, version):
    """-> dict(error, session_id, topics: [(name or id, [partition dicts])])."""
    r.i32()  # throttle
    out = {"error": r.i16(), "session_id": r.i32()}

    def aborted(r):
        tx = (r.i64(), r.i64())
        r.tags()
        return tx

    def part(r):
        p = {"partition": r.i32(), "error": r.i16(), "high_watermark": r.i64(),
             "last_stable_offset": r.i64(), "log_start_offset": r.i64()}
        p["aborted"] = r.array(aborted)
        p["preferred_read_replica"] = r.i32()
        p["records"] = r.records()
        p["tags"] = r.tags()
        return p

    def topic(r):
        key = r.uuid() if version >= 13 else r.string()
        parts = r.array(part)
        r.tags()
        return key, parts

    out["topics"] = r.array(topic)
    r.tags()
    done(r)
    return out


def fetch(conn, version, topics, **kw):
    return parse_fetch(conn.call(FETCH, version, fetch_request(version, topics, **kw)), version)


def delete_topics(conn, names, version=4):
    w = Writer(version >= FIRST_FLEXIBLE[DELETE_TOPICS])
    w.array(names, lambda w, n: w.string(n)).i32(30000).tags()
    r = conn.call(DELETE_TOPICS, version, bytes(w.buf))
    r.i32()

    def res(r):
        out = (r.string(), r.i16())
        r.tags()
        return out

    results = r.array(res)
    r.tags()
    done(r)
    return dict(results)


def create_partitions(conn, name, count, version=1, validate_only=False):
    w = Writer(version >= FIRST_FLEXIBLE[CREATE_PARTITIONS])
    w.array([name], lambda w, n: w.string(n).i32(count).array(None, None).tags())
    w.i32(30000).bool(validate_only).tags()
    r = conn.call(CREATE_PARTITIONS, version, bytes(w.buf))
    r.i32()

    def res(r):
        out = (r.string(), r.i16(), r.string())
        r.tags()
        return out

    results = r.array(res)
    r.tags()
    done(r)
    return {n: (e, m) for n, e, m in results}


def offset_commit(conn, version, group, generation, member, offsets):
    """offsets: [(topic, partition, offset)]; returns {(topic, partition): error}."""
    w = Writer(version >= FIRST_FLEXIBLE[OFFSET_COMMIT])
    w.string(group).i32(generation).string(member)
    if version >= 7:
        w.string(None)  # group instance id
    if 2 <= version <= 4:
        w.i64(-1)  # retention time: the broker's
    by_topic = {}
    for t, p, o in offsets:
        by_topic.setdefault(t, []).append((p, o))

    def partition(w, po):
        w.i32(po[0]).i64(po[1])
        if version >= 6:
            w.i32(-1)  # leader epoch
        w.string("").tags()

    w.array(list(by_topic.items()), lambda w, t: w.string(t[0]).array(t[1], partition).tags())
    w.tags()
    r = conn.call(OFFSET_COMMIT, version, bytes(w.buf))
    if version >= 3:
        r.i32()  # throttle

    def part(r):
        out = (r.i32(), r.i16())
        r.tags()
        return out

    def topic(r):
        name = r.string()
        parts = r.array(part)
        r.tags()
        return [((name, p), e) for p, e in parts]

    results = r.array(topic)
    r.tags()
    done(r)
    return dict(x for t in results for x in t)


def offset_fetch(conn, group, topic, partitions, version=7):
    """Returns {partition: (committed offset, error)} for one group (v7: one group)."""
    w = Writer(version >= FIRST_FLEXIBLE[OFFSET_FETCH])
    w.string(group).array([topic], lambda w, t: w.string(t).array(
        partitions, lambda w, p: w.i32(p)).tags())
    w.bool(False).tags()  # require_stable
    r = conn.call(OFFSET_FETCH, version, bytes(w.buf))
    r.i32()

    def part(r):
        out = (r.i32(), r.i64(), r.i32(), r.string(), r.i16())
        r.tags()
        return out

    def tpc(r):
        r.string()
        out = r.array(part)
        r.tags()
        return out

    results = r.array(tpc)
    self_error = r.i16()
    r.tags()
    done(r)
    assert self_error == NONE, self_error
    return {p: (o, e) for t in results for p, o, _, _, e in t}


def delete_records(conn, topic, partitions_and_offsets, version=2):
    """Returns {partition: (low watermark, error)}."""
    w = Writer(version >= FIRST_FLEXIBLE[DELETE_RECORDS])
    w.array([topic], lambda w, t: w.string(t).array(
        partitions_and_offsets, lambda w, po: w.i32(po[0]).i64(po[1]).tags()).tags())
    w.i32(30000).tags()
    r = conn.call(DELETE_RECORDS, version, bytes(w.buf))
    r.i32()

    def part(r):
        out = (r.i32(), r.i64(), r.i16())
        r.tags()
        return out

    def tpc(r):
        r.string()
        out = r.array(part)
        r.tags()
        return out

    results = r.array(tpc)
    r.tags()
    done(r)
    return {p: (low, e) for t in results for p, low, e in t}


def api_versions_with_tags(conn, version=3):
    """-> (error, {key: (min, max)}, {tag: raw bytes} of the response's tagged fields)."""
    w = Writer(version >= 3)
    if version >= 3:
        w.string("runnel-raw-test").string("1.0").tags()
    r = conn.call(API_VERSIONS, version, bytes(w.buf))
    error = r.i16()

    def key(r):
        k = (r.i16(), r.i16(), r.i16())
        r.tags()
        return k

    keys = {k: (lo, hi) for k, lo, hi in r.array(key)}
    if version >= 1:
        r.i32()
    raw_tags = r.tags()
    done(r)
    return error, keys, raw_tags


def api_versions(conn, version=3):
    error, keys, _ = api_versions_with_tags(conn, version)
    return error, keys


def init_producer_id(conn, version, transactional_id=None, timeout_ms=60000, producer_id=-1,
                     epoch=-1):
    """-> (error, producer_id, epoch); the whole response is checked to be consumed."""
    w = Writer(version >= 2)
    w.string(transactional_id).i32(timeout_ms)
    if version >= 3:
        w.i64(producer_id).i16(epoch)
    w.tags()
    r = conn.call(INIT_PRODUCER_ID, version, bytes(w.buf))
    throttle = r.i32()
    assert throttle == 0, throttle
    out = (r.i16(), r.i64(), r.i16())
    r.tags()
    done(r)
    return out


# ---------------------------------------------------------------------------

class RawProtocolTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.broker = Broker(overrides=["message.max.bytes=%d" % MESSAGE_MAX_BYTES])
        cls.broker.start()

    @classmethod
    def tearDownClass(cls):
        cls.broker.close()

    def setUp(self):
        self.conns = []
        self.conn = self.connect()

    def tearDown(self):
        for c in self.conns:
            c.close()
        self.assertTrue(self.broker.alive(), "broker died; output:\n%s" % self.broker.output())

    def connect(self):
        c = Connection(self.broker.host, self.broker.port)
        self.conns.append(c)
        return c

    # helpers -------------------------------------------------------------

    def create(self, name, partitions=1, configs=None, version=4):
        res = create_topics(self.conn, version, [(name, partitions, 1, configs or {})])
        self.assertEqual(res[name]["error"], NONE, res[name])
        return res[name]

    def produce_ok(self, topic, partition, records, expect_base=None):
        resp = produce(self.conn, 7, topic, partition, build_batch(records))
        self.assertEqual(resp["error"], NONE, resp)
        if expect_base is not None:
            self.assertEqual(resp["base_offset"], expect_base, resp)
        self.assertEqual(resp["log_append_time"], -1, resp)  # CreateTime topic
        self.assertEqual(resp["log_start_offset"], 0, resp)
        return resp["base_offset"]

    def leader_epoch(self, topic, partition=0):
        _, topics = metadata(self.conn, 12, [topic], False)
        self.assertEqual(topics[topic]["error"], NONE)
        return topics[topic]["partitions"][partition]["leader_epoch"]

    def one_partition(self, resp, key=None):
        self.assertEqual(len(resp["topics"]), 1, resp)
        name, parts = resp["topics"][0]
        if key is not None:
            self.assertEqual(name, key)
        self.assertEqual(len(parts), 1, resp)
        return parts[0]

    def assert_empty_ok(self, p, hw):
        self.assertEqual(p["error"], NONE, p)
        self.assertEqual(p["high_watermark"], hw, p)
        self.assertEqual(p["last_stable_offset"], hw, p)
        self.assertEqual(p["log_start_offset"], 0, p)
        self.assertEqual(p["preferred_read_replica"], -1, p)
        self.assertIsNotNone(p["records"], "records must be empty, not null")
        self.assertEqual(p["records"], b"", p)

    def list_one(self, topic, ts, partition=0, version=7):
        res = list_offsets(self.conn, version, topic, [(partition, ts)])
        self.assertEqual(len(res), 1, res)
        self.assertEqual(res[0]["partition"], partition)
        return res[0]

    # 1. ListOffsets --------------------------------------------------------

    def test_list_offsets(self):
        topic = "lo-topic"
        self.create(topic)
        self.produce_ok(topic, 0, [(1000, b"k0", b"v0")], 0)
        # Largest timestamp (3500) is the middle record, not the last one.
        self.produce_ok(topic, 0, [(2000, b"k1", b"v1"), (3500, b"k2", b"v2"),
                                   (2500, b"k3", b"v3")], 1)
        self.produce_ok(topic, 0, [(3000, b"k4", b"v4")], 4)
        n = 5
        epoch = self.leader_epoch(topic)
        self.assertGreaterEqual(epoch, 0)

        def check(ts, offset, timestamp, leader_epoch):
            got = self.list_one(topic, ts)
            self.assertEqual((got["error"], got["offset"], got["timestamp"], got["leader_epoch"]),
                             (NONE, offset, timestamp, leader_epoch), "ListOffsets v7 ts=%d" % ts)

        check(EARLIEST, 0, -1, epoch)
        check(LATEST, n, -1, epoch)
        check(MAX_TIMESTAMP, 2, 3500, epoch)
        check(0, 0, 1000, epoch)
        check(1000, 0, 1000, epoch)
        check(1500, 1, 2000, epoch)
        check(2600, 2, 3500, epoch)
        # The first offset whose timestamp is >= 3000 is 2 (3500), not 4 (3000).
        check(3000, 2, 3500, epoch)
        # Nothing at or after the timestamp: offset -1, timestamp -1, error 0 (the
        # leader epoch of that answer is checked in test_list_offsets_not_found_epoch).
        for ts in (3600, 99999):
            got = self.list_one(topic, ts)
            self.assertEqual((got["error"], got["offset"], got["timestamp"]), (NONE, -1, -1),
                             "ListOffsets v7 ts=%d" % ts)

        # v1 (classic encoding, no leader epoch, no throttle time).
        for ts, offset in ((EARLIEST, 0), (LATEST, n)):
            got = self.list_one(topic, ts, version=1)
            self.assertEqual((got["error"], got["offset"], got["timestamp"]), (NONE, offset, -1),
                             "ListOffsets v1 ts=%d" % ts)

        # Unknown partition of an existing topic, and an unknown topic.
        got = self.list_one(topic, LATEST, partition=7)
        self.assertEqual((got["error"], got["offset"], got["timestamp"], got["leader_epoch"]),
                         (UNKNOWN_TOPIC_OR_PARTITION, -1, -1, -1))
        got = self.list_one("lo-no-such-topic", LATEST)
        self.assertEqual((got["error"], got["offset"], got["timestamp"]),
                         (UNKNOWN_TOPIC_OR_PARTITION, -1, -1))

    def test_list_offsets_duplicate_partition(self):
        topic = "lo-dup-topic"
        self.create(topic)
        self.produce_ok(topic, 0, [(1000, b"k", b"v")], 0)
        # The same partition twice in one request: Kafka answers INVALID_REQUEST (4.x
        # keys its answers by partition, so it sends a single entry; 3.x sent one per
        # request entry), with offset and timestamp -1.
        res = list_offsets(self.conn, 7, topic, [(0, EARLIEST), (0, LATEST)])
        self.assertTrue(res)
        self.assertEqual({(p["partition"], p["error"], p["offset"], p["timestamp"]) for p in res},
                         {(0, INVALID_REQUEST, -1, -1)},
                         "ListOffsets v7 naming partition 0 twice: %r" % res)

    def test_list_offsets_not_found_epoch(self):
        # Kafka answers "not found" (and MAX_TIMESTAMP on an empty log) with
        # buildErrorResponse(NONE): leader_epoch keeps its default, -1.
        topic = "lo-epoch-topic"
        self.create(topic)
        epoch = self.leader_epoch(topic)
        answers = {ts: self.list_one(topic, ts) for ts in (EARLIEST, LATEST, MAX_TIMESTAMP, 500)}
        self.assertEqual({ts: (a["error"], a["offset"], a["timestamp"])
                          for ts, a in answers.items()},
                         {EARLIEST: (NONE, 0, -1), LATEST: (NONE, 0, -1),
                          MAX_TIMESTAMP: (NONE, -1, -1), 500: (NONE, -1, -1)},
                         "ListOffsets v7 on an empty partition")
        self.assertEqual(answers[LATEST]["leader_epoch"], epoch)
        self.produce_ok(topic, 0, [(1000, b"k", b"v")], 0)
        got = self.list_one(topic, 5000)
        self.assertEqual((got["error"], got["offset"], got["timestamp"]), (NONE, -1, -1))
        self.assertEqual((got["leader_epoch"], answers[MAX_TIMESTAMP]["leader_epoch"],
                          answers[500]["leader_epoch"]), (-1, -1, -1),
                         "leader_epoch of ListOffsets v7 'not found' answers "
                         "(ts 5000 on a non-empty log, -3 and 500 on an empty log)")

    # 2. Fetch long poll ------------------------------------------------------

    def test_fetch_long_poll_wakes_on_produce(self):
        topic = "lp-topic"
        self.create(topic)
        for i in range(3):
            self.produce_ok(topic, 0, [(5000 + i, b"old", b"old-%d" % i)], i)
        n = 3
        epoch = self.leader_epoch(topic)
        a = self.connect()
        b = self.connect()
        cid = a.send(FETCH, 11, fetch_request(11, [(topic, [(0, n, 1048576)])],
                                              max_wait_ms=5000, min_bytes=1))
        # Nothing to read: the broker must hold the fetch (5 s max wait).
        readable, _, _ = select.select([a.sock], [], [], 0.3)
        self.assertEqual(readable, [], "Fetch at the log end answered before any data came")
        start = time.monotonic()
        resp = produce(b, 7, topic, 0, build_batch([(7777, b"wake-key", b"wake-value",
                                                      [("h", b"1")])]))
        self.assertEqual((resp["error"], resp["base_offset"]), (NONE, n), resp)
        got = parse_fetch(a.receive(FETCH, 11, cid), 11)
        elapsed = time.monotonic() - start
        if elapsed > 2.5:
            sys.stderr.write("note: long-poll fetch answered %.1f s after the produce\n" % elapsed)
        self.assertEqual((got["error"], got["session_id"]), (NONE, 0))
        p = self.one_partition(got, topic)
        self.assertEqual((p["partition"], p["error"], p["high_watermark"],
                          p["last_stable_offset"], p["log_start_offset"]),
                         (0, NONE, n + 1, n + 1, 0), p)
        batches, trailing = parse_batches(p["records"])
        self.assertEqual(trailing, 0)
        self.assertEqual(len(batches), 1)
        self.assertEqual(batches[0]["base_offset"], n)
        self.assertEqual(batches[0]["partition_leader_epoch"], epoch)
        self.assertEqual(batches[0]["records"],
                         [{"offset": n, "timestamp": 7777, "key": b"wake-key",
                           "value": b"wake-value", "headers": [("h", b"1")]}])

    # 3. Fetch max wait with nothing to read -------------------------------------

    def test_fetch_max_wait_empty(self):
        topic = "mw-topic"
        self.create(topic)
        self.produce_ok(topic, 0, [(1, b"k", b"v"), (2, b"k", b"v")], 0)
        got = fetch(self.conn, 11, [(topic, [(0, 2, 1048576)])], max_wait_ms=200, min_bytes=1)
        self.assertEqual((got["error"], got["session_id"]), (NONE, 0))
        self.assert_empty_ok(self.one_partition(got, topic), 2)
        # Data there but fewer than min_bytes: at max_wait the broker sends what it has.
        got = fetch(self.conn, 11, [(topic, [(0, 0, 1048576)])], max_wait_ms=200,
                    min_bytes=1 << 20)
        p = self.one_partition(got, topic)
        self.assertEqual((p["error"], p["high_watermark"]), (NONE, 2), p)
        batches, trailing = parse_batches(p["records"])
        self.assertEqual(([[r["offset"] for r in b["records"]] for b in batches], trailing),
                         ([[0, 1]], 0))
        # Empty topic, offset 0 = log end.
        topic2 = "mw-empty"
        self.create(topic2)
        got = fetch(self.conn, 11, [(topic2, [(0, 0, 1048576)])], max_wait_ms=200, min_bytes=1)
        self.assertEqual(got["error"], NONE)
        self.assert_empty_ok(self.one_partition(got, topic2), 0)

    # 4. OFFSET_OUT_OF_RANGE --------------------------------------------------------

    def test_fetch_offset_out_of_range(self):
        topic = "oor-topic"
        self.create(topic)
        self.produce_ok(topic, 0, [(10, b"a", b"1")], 0)
        self.produce_ok(topic, 0, [(20, b"b", b"2"), (30, b"c", b"3")], 1)
        leo = 3
        for offset in (leo + 5, leo + 1, -1):
            got = fetch(self.conn, 11, [(topic, [(0, offset, 1048576)])], max_wait_ms=100)
            self.assertEqual(got["error"], NONE)
            p = self.one_partition(got, topic)
            # Kafka: error 1 with HW, LSO and log start offset all -1 and empty records.
            self.assertEqual((p["error"], p["high_watermark"], p["last_stable_offset"],
                              p["log_start_offset"], p["records"]),
                             (OFFSET_OUT_OF_RANGE, -1, -1, -1, b""), "fetch at %d" % offset)
        got = fetch(self.conn, 11, [(topic, [(0, leo, 1048576)])], max_wait_ms=100)
        self.assert_empty_ok(self.one_partition(got, topic), leo)
        # A fetch in the middle of a batch returns that whole batch.
        got = fetch(self.conn, 11, [(topic, [(0, 2, 1048576)])], max_wait_ms=100)
        p = self.one_partition(got, topic)
        self.assertEqual((p["error"], p["high_watermark"]), (NONE, leo))
        batches, trailing = parse_batches(p["records"])
        self.assertEqual(trailing, 0)
        self.assertEqual([[r["offset"] for r in b["records"]] for b in batches], [[1, 2]])

    def test_delete_records(self):
        topic = "dr-topic"
        self.create(topic)
        for i in range(4):
            self.produce_ok(topic, 0, [(10 + i, b"k", b"v%d" % i)], i)
        for version in (0, 1, 2):
            self.assertEqual(delete_records(self.conn, topic, [(0, 1)], version), {0: (1, NONE)})
        self.assertEqual(delete_records(self.conn, topic, [(0, 3)]), {0: (3, NONE)})
        self.assertEqual(delete_records(self.conn, topic, [(0, 2)]), {0: (3, NONE)})  # not lowered
        # Beyond the high watermark, or negative other than -1: OFFSET_OUT_OF_RANGE.
        self.assertEqual(delete_records(self.conn, topic, [(0, 5), (1, 0)]),
                         {0: (-1, OFFSET_OUT_OF_RANGE), 1: (-1, UNKNOWN_TOPIC_OR_PARTITION)})
        self.assertEqual(delete_records(self.conn, topic, [(0, -2)]),
                         {0: (-1, OFFSET_OUT_OF_RANGE)})
        self.assertEqual(delete_records(self.conn, "dr-missing", [(0, 0)]),
                         {0: (-1, UNKNOWN_TOPIC_OR_PARTITION)})
        # ListOffsets earliest and Fetch honour the new start.
        [p] = list_offsets(self.conn, 7, topic, [(0, -2)])
        self.assertEqual((p["error"], p["offset"]), (NONE, 3))
        got = fetch(self.conn, 11, [(topic, [(0, 2, 1048576)])], max_wait_ms=100)
        self.assertEqual(self.one_partition(got, topic)["error"], OFFSET_OUT_OF_RANGE)
        got = fetch(self.conn, 11, [(topic, [(0, 3, 1048576)])], max_wait_ms=100)
        p = self.one_partition(got, topic)
        self.assertEqual((p["error"], p["log_start_offset"]), (NONE, 3))
        # -1 deletes up to the high watermark.
        self.assertEqual(delete_records(self.conn, topic, [(0, -1)]), {0: (4, NONE)})
        # A compacted-only topic refuses: Kafka's POLICY_VIOLATION.
        create_topics(self.conn, 4, [("dr-compact", 1, 1, {"cleanup.policy": "compact"})])
        self.assertEqual(delete_records(self.conn, "dr-compact", [(0, 0)]),
                         {0: (-1, POLICY_VIOLATION)})

    # 5. Fetch limits -------------------------------------------------------------

    def test_fetch_limits(self):
        topic = "limits-topic"
        self.create(topic, partitions=2)
        sizes = {}
        for partition, count in ((0, 4), (1, 2)):
            for i in range(count):
                batch = build_batch([(100 + i, b"p%d-%d" % (partition, i),
                                      bytes([65 + i]) * 1000)])
                sizes[(partition, i)] = len(batch)
                resp = produce(self.conn, 7, topic, partition, batch)
                self.assertEqual((resp["error"], resp["base_offset"]), (NONE, i), resp)
        size = sizes[(0, 0)]
        self.assertTrue(all(s == size for s in sizes.values()))

        def get(parts, max_bytes=50 * 1024 * 1024):
            got = fetch(self.conn, 11, [(topic, parts)], max_wait_ms=100, max_bytes=max_bytes)
            self.assertEqual(got["error"], NONE)
            self.assertEqual(len(got["topics"]), 1)
            self.assertEqual(got["topics"][0][0], topic)
            out = []
            for p in got["topics"][0][1]:
                self.assertEqual(p["error"], NONE, p)
                self.assertIsNotNone(p["records"])
                batches, trailing = parse_batches(p["records"])
                out.append((p["partition"], [b["base_offset"] for b in batches], trailing,
                            len(p["records"])))
            return out

        # partition_max_bytes smaller than one batch: that one whole batch (KIP-74).
        (p0,) = get([(0, 0, 500)])
        self.assertEqual(p0, (0, [0], 0, size))
        (p0,) = get([(0, 2, 1)])
        self.assertEqual(p0, (0, [2], 0, size))
        # partition_max_bytes of 2.5 batches: exactly 2 whole batches. Kafka returns a
        # byte range, so a truncated third batch may follow; it must stay within the limit.
        limit = size * 5 // 2
        (p0,) = get([(0, 0, limit)])
        self.assertEqual(p0[:2], (0, [0, 1]))
        self.assertLess(p0[2], size)
        self.assertLessEqual(p0[3], limit)
        # Exactly 3 batches' worth: 3 batches.
        (p0,) = get([(0, 0, 3 * size)])
        self.assertEqual(p0, (0, [0, 1, 2], 0, 3 * size))
        # max_bytes below one batch: the first partition gets one whole batch, the
        # second nothing (the budget is used up).
        res = get([(0, 0, 1048576), (1, 0, 1048576)], max_bytes=500)
        self.assertEqual(res, [(0, [0], 0, size), (1, [], 0, 0)])
        # ... unless the first partition has nothing: then the second is the first
        # non-empty one and gets its first batch whole.
        res = get([(0, 4, 1048576), (1, 0, 1048576)], max_bytes=500)
        self.assertEqual(res, [(0, [], 0, 0), (1, [0], 0, size)])
        # max_bytes of 2.5 batches over two partitions: 2 whole batches from the first,
        # no whole batch from the second, and no more than max_bytes in all.
        res = get([(0, 0, 1048576), (1, 0, 1048576)], max_bytes=limit)
        self.assertEqual([(p, b) for p, b, _, _ in res], [(0, [0, 1]), (1, [])])
        self.assertLessEqual(res[0][3] + res[1][3], limit)
        # max_bytes of 3 batches: 2 from partition 0 (its partition_max_bytes), 1 from 1.
        res = get([(0, 0, 2 * size), (1, 0, 1048576)], max_bytes=3 * size)
        self.assertEqual(res, [(0, [0, 1], 0, 2 * size), (1, [0], 0, size)])

    # 6. Fetch v13 by topic id ------------------------------------------------------

    def test_fetch_by_topic_id(self):
        topic = "id-topic"
        created = create_topics(self.conn, 7, [(topic, 2, 1, {})])[topic]
        self.assertEqual((created["error"], created["message"], created["num_partitions"],
                          created["replication_factor"]), (NONE, None, 2, 1), created)
        topic_id = created["topic_id"]
        self.assertNotEqual(topic_id, b"\x00" * 16)
        _, topics = metadata(self.conn, 12, [topic], False)
        self.assertEqual(topics[topic]["error"], NONE)
        self.assertEqual(topics[topic]["topic_id"], topic_id)
        self.assertEqual(sorted(p["index"] for p in topics[topic]["partitions"]), [0, 1])
        self.produce_ok(topic, 1, [(42, b"id-k1", b"id-v1"), (43, None, b"id-v2")], 0)

        unknown = uuid.uuid4().bytes
        got = fetch(self.conn, 13, [(topic_id, [(1, 0, 1048576), (0, 0, 1048576)]),
                                    (unknown, [(0, 0, 1048576)])], max_wait_ms=100)
        self.assertEqual((got["error"], got["session_id"]), (NONE, 0))
        by_id = {key: parts for key, parts in got["topics"]}
        self.assertEqual(set(by_id), {topic_id, unknown})
        p1, p0 = by_id[topic_id]
        self.assertEqual((p1["partition"], p1["error"], p1["high_watermark"]), (1, NONE, 2), p1)
        batches, trailing = parse_batches(p1["records"])
        self.assertEqual(trailing, 0)
        self.assertEqual([(r["offset"], r["timestamp"], r["key"], r["value"])
                          for b in batches for r in b["records"]],
                         [(0, 42, b"id-k1", b"id-v1"), (1, 43, None, b"id-v2")])
        self.assertEqual(p0["partition"], 0)
        self.assert_empty_ok(p0, 0)
        (pu,) = by_id[unknown]
        self.assertEqual((pu["partition"], pu["error"], pu["high_watermark"]),
                         (0, UNKNOWN_TOPIC_ID, -1), pu)
        self.assertIn(pu["records"], (None, b""))

        # Only the unknown id.
        got = fetch(self.conn, 13, [(unknown, [(0, 0, 1048576)])], max_wait_ms=100)
        p = self.one_partition(got, unknown)
        self.assertEqual(p["error"], UNKNOWN_TOPIC_ID)

    # 7. Fetch sessions -------------------------------------------------------------

    def test_fetch_sessions(self):
        topic = "sess-topic"
        self.create(topic)
        self.produce_ok(topic, 0, [(1, b"s", b"session-data")], 0)

        def records_of(got):
            p = self.one_partition(got, topic)
            self.assertEqual(p["error"], NONE, p)
            return [(r["offset"], r["value"]) for b in parse_batches(p["records"])[0]
                    for r in b["records"]]

        # session_id 0, epoch 0: "create a session". The broker may decline (KIP-227):
        # session id 0 in the answer, with the data.
        got = fetch(self.conn, 11, [(topic, [(0, 0, 1048576)])], session_id=0, session_epoch=0)
        self.assertEqual((got["error"], got["session_id"]), (NONE, 0))
        self.assertEqual(records_of(got), [(0, b"session-data")])
        # Sessionless full fetch (epoch -1).
        got = fetch(self.conn, 11, [(topic, [(0, 0, 1048576)])], session_id=0, session_epoch=-1)
        self.assertEqual((got["error"], got["session_id"]), (NONE, 0))
        self.assertEqual(records_of(got), [(0, b"session-data")])
        # Incremental fetch in a session the broker does not know: top-level error 70,
        # no topics.
        got = fetch(self.conn, 11, [(topic, [(0, 0, 1048576)])], session_id=12345,
                    session_epoch=1)
        self.assertEqual((got["error"], got["session_id"], got["topics"]),
                         (FETCH_SESSION_ID_NOT_FOUND, 0, []))

    def test_fetch_full_fetch_naming_a_session(self):
        # Kafka (FetchManager.newContext): epoch -1 (FINAL_EPOCH) or 0 (INITIAL_EPOCH) makes
        # a FULL fetch; a session id given with it is closed if it exists, and the fetch is
        # answered normally: sessionless for -1 (session id 0), in a new session for 0 (any
        # session id, 0 if the broker declines). Never FETCH_SESSION_ID_NOT_FOUND.
        topic = "sess-full-topic"
        self.create(topic)
        self.produce_ok(topic, 0, [(1, b"s", b"full-data")], 0)
        for epoch in (-1, 0):
            with self.subTest(session_epoch=epoch):
                got = fetch(self.conn, 11, [(topic, [(0, 0, 1048576)])], session_id=12345,
                            session_epoch=epoch)
                self.assertEqual(got["error"], NONE,
                                 "Fetch v11 session_id=12345 epoch=%d: top-level error" % epoch)
                if epoch == -1:
                    self.assertEqual(got["session_id"], 0)
                p = self.one_partition(got, topic)
                self.assertEqual(p["error"], NONE)
                self.assertEqual([r["value"] for b in parse_batches(p["records"])[0]
                                  for r in b["records"]], [b"full-data"])

    # 8. Produce errors --------------------------------------------------------------

    def test_produce_errors(self):
        topic = "perr-topic"
        self.create(topic)
        limited = "perr-limited"
        self.create(limited, configs={"max.message.bytes": "1200"})

        def expect_error(t, partition, batch, error, what, acks=1):
            resp = produce(self.conn, 7, t, partition, batch, acks=acks)
            self.assertEqual((resp["error"], resp["base_offset"], resp["log_append_time"],
                              resp["log_start_offset"]), (error, -1, -1, -1), what)

        # Corrupted CRC.
        batch = bytearray(build_batch([(1, b"k", b"crc")]))
        batch[17] ^= 0x01
        expect_error(topic, 0, bytes(batch), CORRUPT_MESSAGE, "bad CRC")
        # A corrupted record body under a correct-looking header is also caught by the CRC.
        batch = bytearray(build_batch([(1, b"k", b"crc-body")]))
        batch[-3] ^= 0xFF
        expect_error(topic, 0, bytes(batch), CORRUPT_MESSAGE, "bad CRC (body)")
        # Over message.max.bytes (broker-wide 2000).
        big = build_batch([(1, b"k", b"x" * 2500)])
        self.assertGreater(len(big), MESSAGE_MAX_BYTES)
        expect_error(topic, 0, big, MESSAGE_TOO_LARGE, "batch over message.max.bytes")
        # Over the topic's max.message.bytes (1200) but under the broker's 2000.
        mid = build_batch([(1, b"k", b"y" * 1500)])
        self.assertTrue(1200 < len(mid) < MESSAGE_MAX_BYTES)
        expect_error(limited, 0, mid, MESSAGE_TOO_LARGE, "batch over topic max.message.bytes")
        self.assertEqual(self.list_one(topic, LATEST)["offset"], 0)
        self.assertEqual(self.list_one(limited, LATEST)["offset"], 0)
        # The same batch is fine on the topic without the override.
        self.produce_ok(topic, 0, [(1, b"k", b"y" * 1500)], 0)
        self.produce_ok(limited, 0, [(1, b"k", b"small")], 0)
        # Unknown topic (Produce never auto-creates), unknown partition.
        expect_error("perr-no-such-topic", 0, build_batch([(1, b"k", b"v")]),
                     UNKNOWN_TOPIC_OR_PARTITION, "unknown topic")
        expect_error(topic, 5, build_batch([(1, b"k", b"v")]), UNKNOWN_TOPIC_OR_PARTITION,
                     "unknown partition")
        _, topics = metadata(self.conn, 4, ["perr-no-such-topic"], False)
        self.assertEqual(topics["perr-no-such-topic"]["error"], UNKNOWN_TOPIC_OR_PARTITION)
        # acks=5.
        expect_error(topic, 0, build_batch([(1, b"k", b"acks")]), INVALID_REQUIRED_ACKS,
                     "acks=5", acks=5)
        self.assertEqual(self.list_one(topic, LATEST)["offset"], 1)

    def test_produce_acks(self):
        topic = "acks-topic"
        self.create(topic)
        # acks=-1 (all) on a single broker: like acks=1.
        resp = produce(self.conn, 7, topic, 0, build_batch([(1, b"k", b"all")]), acks=-1)
        self.assertEqual((resp["error"], resp["base_offset"]), (NONE, 0), resp)
        # acks=0: no response at all; the next request on the connection is answered next.
        w = Writer(False)
        w.string(None).i16(0).i32(30000)
        w.array([topic], lambda w, t: w.string(t).array(
            [0], lambda w, p: w.i32(p).records(build_batch([(2, b"k", b"zero")]))))
        self.conn.send(PRODUCE, 7, bytes(w.buf))
        error, _ = api_versions(self.conn, 3)  # checks the correlation id
        self.assertEqual(error, NONE)
        got = fetch(self.conn, 11, [(topic, [(0, 1, 1048576)])], max_wait_ms=1000)
        p = self.one_partition(got, topic)
        self.assertEqual([(r["offset"], r["value"]) for b in parse_batches(p["records"])[0]
                          for r in b["records"]], [(1, b"zero")])
        # acks=0 with an error (unknown topic): Kafka closes the connection, the only way
        # to tell the producer that something went wrong.
        conn = self.connect()
        w = Writer(False)
        w.string(None).i16(0).i32(30000)
        w.array(["acks-no-such-topic"], lambda w, t: w.string(t).array(
            [0], lambda w, p: w.i32(p).records(build_batch([(2, b"k", b"lost")]))))
        conn.send(PRODUCE, 7, bytes(w.buf))
        cid = conn.send(API_VERSIONS, 0, b"")
        try:
            frame = conn.read_frame()
        except socket.timeout:
            self.fail("acks=0 Produce with an error: connection neither closed nor answered")
        self.assertIsNone(frame, "acks=0 Produce to an unknown topic must close the connection "
                          "(got a frame with correlation id %s; ApiVersions had %d)"
                          % (struct.unpack_from(">i", frame)[0] if frame else None, cid))

    def test_produce_v2_refused(self):
        error, keys = api_versions(self.conn, 3)
        self.assertEqual(error, NONE)
        self.assertEqual(keys.get(PRODUCE, (None, None))[0], 0,
                         "Produce advertised with min version 0 (as Kafka 4)")
        self.assertGreaterEqual(keys[PRODUCE][1], 7)
        # A well-formed Produce v2 (magic 1 message set, acks=1).
        value = b"legacy"
        msg = struct.pack(">bbqi", 1, 0, 1000, -1) + struct.pack(">i", len(value)) + value
        msg = struct.pack(">I", zlib.crc32(msg) & 0xFFFFFFFF) + msg
        message_set = struct.pack(">qi", 0, len(msg)) + msg
        w = Writer(False)
        w.i16(1).i32(30000)
        w.array(["perr-v2"], lambda w, t: w.string(t).array(
            [0], lambda w, p: w.i32(p).bytes(message_set)))
        conn = self.connect()
        conn.send(PRODUCE, 2, bytes(w.buf))
        try:
            frame = conn.read_frame()
        except socket.timeout:
            self.fail("Produce v2: neither answered nor closed")
        self.assertIsNone(frame, "Produce v2 must close the connection, got a response")
        # The broker keeps serving.
        fresh = self.connect()
        error, keys = api_versions(fresh, 3)
        self.assertEqual(error, NONE)
        error, keys = api_versions(self.conn, 3)
        self.assertEqual(error, NONE)

    # 9. CreateTopics / DeleteTopics / CreatePartitions ------------------------------

    def test_admin_errors(self):
        c = self.conn
        # validate_only: answered as a success, creates nothing.
        res = create_topics(c, 4, [("adm-validate", 3, 1, {})], validate_only=True)
        self.assertEqual((res["adm-validate"]["error"], res["adm-validate"]["message"]),
                         (NONE, None))
        _, topics = metadata(c, 4, ["adm-validate"], allow_auto_topic_creation=False)
        self.assertEqual(topics["adm-validate"]["error"], UNKNOWN_TOPIC_OR_PARTITION)
        self.assertEqual(topics["adm-validate"]["partitions"], [])
        _, topics = metadata(c, 4, None, allow_auto_topic_creation=False)
        self.assertNotIn("adm-validate", topics)
        # Metadata with auto-creation disallowed did not create it either.
        _, topics = metadata(c, 12, ["adm-validate"], allow_auto_topic_creation=False)
        self.assertEqual(topics["adm-validate"]["error"], UNKNOWN_TOPIC_OR_PARTITION)

        res = create_topics(c, 4, [("adm-rf3", 1, 3, {}), ("adm-p0", 0, 1, {}),
                                   ("adm/slash", 1, 1, {}), ("adm-ok", 2, 1, {}),
                                   ("adm-default", -1, -1, {})])
        self.assertEqual({n: r["error"] for n, r in res.items()},
                         {"adm-rf3": INVALID_REPLICATION_FACTOR, "adm-p0": INVALID_PARTITIONS,
                          "adm/slash": INVALID_TOPIC_EXCEPTION, "adm-ok": NONE,
                          "adm-default": NONE})
        for name in ("adm-rf3", "adm-p0", "adm/slash"):
            self.assertIsNotNone(res[name]["message"], name)
        self.assertIsNone(res["adm-ok"]["message"])
        res = create_topics(c, 4, [("adm-ok", 2, 1, {})])
        self.assertEqual(res["adm-ok"]["error"], TOPIC_ALREADY_EXISTS)
        _, topics = metadata(c, 4, ["adm-ok", "adm-default", "adm-rf3", "adm-p0"], False)
        self.assertEqual(len(topics["adm-ok"]["partitions"]), 2)
        self.assertEqual(len(topics["adm-default"]["partitions"]), 1)  # num.partitions
        self.assertEqual(topics["adm-rf3"]["error"], UNKNOWN_TOPIC_OR_PARTITION)
        self.assertEqual(topics["adm-p0"]["error"], UNKNOWN_TOPIC_OR_PARTITION)

        self.assertEqual(delete_topics(c, ["adm-no-such-topic"]),
                         {"adm-no-such-topic": UNKNOWN_TOPIC_OR_PARTITION})

        self.assertEqual(create_partitions(c, "adm-ok", 1)["adm-ok"][0], INVALID_PARTITIONS)
        self.assertEqual(create_partitions(c, "adm-ok", 2)["adm-ok"][0], INVALID_PARTITIONS)
        self.assertEqual(create_partitions(c, "adm-no-such-topic", 4)["adm-no-such-topic"][0],
                         UNKNOWN_TOPIC_OR_PARTITION)
        self.assertEqual(create_partitions(c, "adm-ok", 3)["adm-ok"], (NONE, None))
        _, topics = metadata(c, 4, ["adm-ok"], False)
        self.assertEqual(sorted(p["index"] for p in topics["adm-ok"]["partitions"]), [0, 1, 2])

        self.assertEqual(delete_topics(c, ["adm-ok"]), {"adm-ok": NONE})
        _, topics = metadata(c, 4, ["adm-ok"], False)
        self.assertEqual(topics["adm-ok"]["error"], UNKNOWN_TOPIC_OR_PARTITION)

    def test_offset_commit_errors(self):
        c = self.conn
        create_topics(c, 4, [("oc-topic", 2, 1, {})])
        # A commit outside any group (generation -1, no member) creates nothing but the
        # offsets; partitions the broker does not host are refused one by one.
        res = offset_commit(c, 8, "oc-simple", -1, "",
                            [("oc-topic", 0, 5), ("oc-topic", 7, 1), ("oc-missing", 0, 1)])
        self.assertEqual(res, {("oc-topic", 0): NONE,
                               ("oc-topic", 7): UNKNOWN_TOPIC_OR_PARTITION,
                               ("oc-missing", 0): UNKNOWN_TOPIC_OR_PARTITION})
        self.assertEqual(offset_fetch(c, "oc-simple", "oc-topic", [0, 1, 7]),
                         {0: (5, NONE), 1: (-1, NONE), 7: (-1, NONE)})
        # A generation for a group that does not exist: ILLEGAL_GENERATION up to v8,
        # GROUP_ID_NOT_FOUND from v9 (Kafka's OffsetMetadataManager).
        for version, error in ((2, ILLEGAL_GENERATION), (8, ILLEGAL_GENERATION),
                               (9, GROUP_ID_NOT_FOUND)):
            res = offset_commit(c, version, "oc-nogroup", 3, "member", [("oc-topic", 0, 1)])
            self.assertEqual(res, {("oc-topic", 0): error}, version)
        self.assertEqual(offset_fetch(c, "oc-nogroup", "oc-topic", [0]), {0: (-1, NONE)})


if __name__ == "__main__":
    unittest.main(verbosity=2)
