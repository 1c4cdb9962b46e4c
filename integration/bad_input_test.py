#!/usr/bin/python3
"""Malformed input over raw sockets to a real runnel process.

For each bad frame the broker must either answer (with the request's
correlation id) or close that connection, within a few seconds; meanwhile a
separate healthy connection, opened before, and a fresh one, opened after,
still get a correct ApiVersions v0 response (error 0, ApiVersions = key 18
listed), and the broker process stays alive.
"""

import os
import socket
import struct
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from broker import Broker  # noqa: E402

MAX_REQUEST_BYTES = 1048576
REPLY_TIMEOUT = 10.0


def header(api_key, api_version, correlation_id, client_id=b"bad-input-test"):
    """Request header v1: api key, version, correlation id, nullable client id."""
    return struct.pack(">hhih", api_key, api_version, correlation_id, len(client_id)) + client_id


def frame(payload):
    return struct.pack(">i", len(payload)) + payload


def api_versions_v0(correlation_id):
    return frame(header(18, 0, correlation_id))


def read_exact(sock, n):
    """n bytes, or None if the connection closed first."""
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


def read_frame(sock):
    """One response frame's payload, or None if the connection closed."""
    size = read_exact(sock, 4)
    if size is None:
        return None
    (n,) = struct.unpack(">i", size)
    if n < 4 or n > 64 * 1024 * 1024:
        raise AssertionError("response frame with bad length %d" % n)
    return read_exact(sock, n)


def parse_api_versions_v0(payload):
    correlation_id, error_code, count = struct.unpack_from(">ihi", payload, 0)
    keys = {}
    pos = 10
    for _ in range(count):
        key, lo, hi = struct.unpack_from(">hhh", payload, pos)
        keys[key] = (lo, hi)
        pos += 6
    return correlation_id, error_code, keys, len(payload) - pos


class BadInputTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.broker = Broker(overrides=["socket.request.max.bytes=%d" % MAX_REQUEST_BYTES])
        cls.broker.start()
        cls.healthy = cls.connect()
        cls.next_id = 1000

    @classmethod
    def tearDownClass(cls):
        cls.healthy.close()
        cls.broker.close()

    @classmethod
    def connect(cls):
        sock = socket.create_connection((cls.broker.host, cls.broker.port), timeout=REPLY_TIMEOUT)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def assert_api_versions_ok(self, sock, what):
        BadInputTest.next_id += 1
        cid = BadInputTest.next_id
        sock.sendall(api_versions_v0(cid))
        payload = read_frame(sock)
        self.assertIsNotNone(payload, "%s: connection closed instead of ApiVersions response" % what)
        got_cid, error_code, keys, trailing = parse_api_versions_v0(payload)
        self.assertEqual((got_cid, error_code, trailing), (cid, 0, 0), what)
        self.assertIn(18, keys, what)
        self.assertEqual(keys[18][0], 0, what)  # v0 is supported

    def assert_healthy(self, what):
        self.assertTrue(self.broker.alive(), "%s: broker died; output:\n%s"
                        % (what, self.broker.output()))
        self.assert_api_versions_ok(self.healthy, what + " (healthy connection)")
        fresh = self.connect()
        try:
            self.assert_api_versions_ok(fresh, what + " (fresh connection)")
        finally:
            fresh.close()

    def assert_answers_or_closes(self, data, correlation_id=None, what=""):
        """Sends data on a new connection; the broker must answer or close it."""
        self.assert_healthy("before " + what)
        sock = self.connect()
        try:
            try:
                sock.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # closed while we were still sending: fine
            start = time.monotonic()
            try:
                payload = read_frame(sock)
            except socket.timeout:
                self.fail("%s: broker neither answered nor closed within %.0f s"
                          % (what, time.monotonic() - start))
            if payload is not None and correlation_id is not None:
                (got,) = struct.unpack_from(">i", payload, 0)
                self.assertEqual(got, correlation_id, "%s: answer with wrong correlation id" % what)
        finally:
            sock.close()
        self.assert_healthy("after " + what)

    def test_negative_length(self):
        self.assert_answers_or_closes(struct.pack(">i", -5) + b"\x00" * 16, what="length -5")

    def test_minus_one_length(self):
        self.assert_answers_or_closes(struct.pack(">i", -1), what="length -1")

    def test_huge_length(self):
        # Over socket.request.max.bytes; the body never comes, so waiting for
        # it would hang this connection: the broker has to close it.
        self.assert_answers_or_closes(struct.pack(">i", MAX_REQUEST_BYTES + 1) + b"\x00" * 64,
                                      what="length max+1")

    def test_max_int_length(self):
        self.assert_answers_or_closes(struct.pack(">i", 0x7FFFFFFF) + b"\x00" * 64,
                                      what="length 2^31-1")

    def test_zero_length(self):
        self.assert_answers_or_closes(struct.pack(">i", 0), what="length 0")

    def test_frame_shorter_than_header(self):
        self.assert_answers_or_closes(frame(b"\x00\x12\x00"), what="3-byte frame")

    def test_garbage_after_metadata_header(self):
        body = header(3, 1, 77) + b"\xff\xfe\x00\x13garbage\x80\x00\x00\x00" * 4
        self.assert_answers_or_closes(frame(body), correlation_id=77,
                                      what="garbage Metadata v1 body")

    def test_garbage_after_produce_header(self):
        body = header(0, 7, 78) + b"\x00\x01" + b"\xaa" * 200
        self.assert_answers_or_closes(frame(body), correlation_id=78,
                                      what="garbage Produce v7 body")

    def test_client_id_longer_than_frame(self):
        body = struct.pack(">hhih", 18, 0, 79, 1000) + b"short"
        self.assert_answers_or_closes(frame(body), correlation_id=79,
                                      what="client id overruns frame")

    def test_unknown_api_key(self):
        self.assert_answers_or_closes(frame(header(9999, 0, 80)), correlation_id=80,
                                      what="api key 9999")

    def test_unsupported_api_version(self):
        # ApiVersions with a version from the future: Kafka answers v0 with
        # UNSUPPORTED_VERSION (35) so that the client can downgrade.
        self.assert_answers_or_closes(frame(header(18, 999, 81)), correlation_id=81,
                                      what="ApiVersions v999")

    def test_pipelined_requests_answered_in_order(self):
        sock = self.connect()
        try:
            sock.sendall(b"".join(api_versions_v0(500 + i) for i in range(20)))
            for i in range(20):
                payload = read_frame(sock)
                self.assertIsNotNone(payload)
                cid, error_code, keys, _ = parse_api_versions_v0(payload)
                self.assertEqual((cid, error_code), (500 + i, 0))
                self.assertIn(18, keys)
        finally:
            sock.close()
        self.assert_healthy("after pipelined requests")

    def test_many_bad_connections(self):
        for i in range(50):
            sock = self.connect()
            try:
                sock.sendall(struct.pack(">i", -1 - i))
            except OSError:
                pass
            sock.close()
        self.assert_healthy("after 50 bad connections")


if __name__ == "__main__":
    unittest.main(verbosity=2)
