"""The command line as kafka-server-start.sh takes it: a properties file, overrides
that win over it, unknown keys accepted with a warning, malformed values refused with
a message naming the key, and SIGTERM/SIGINT ending the process cleanly."""
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from broker import default_binary  # noqa: E402
from confluent_kafka import Producer  # noqa: E402

LISTENING = re.compile(rb"Listening on PLAINTEXT://([^:\s]+):(\d+)")


class Runnel:
    """runnel started with exactly the given arguments, output captured to a file."""

    def __init__(self, args):
        self.dir = tempfile.mkdtemp(prefix="runnel-cli.")
        self.log = os.path.join(self.dir, "out.log")
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen([default_binary()] + args, stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def output(self):
        with open(self.log, "rb") as f:
            return f.read()

    def wait_listening(self, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = LISTENING.search(self.output())
            if m:
                return "%s:%s" % (m.group(1).decode(), m.group(2).decode())
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError("not listening: %r" % self.output())

    def stop(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)
        return self.proc.wait(20)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def partitions_of_new_topic(bootstrap, topic):
    """Auto-creates topic through Metadata and returns its partition count."""
    p = Producer({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        md = p.list_topics(topic, timeout=10)
        t = md.topics.get(topic)
        if t is not None and t.error is None and t.partitions:
            return len(t.partitions)
        time.sleep(0.1)
    raise AssertionError("topic %s not created" % topic)


class CommandLineTest(unittest.TestCase):
    def setUp(self):
        self.brokers = []
        self.tmp = tempfile.mkdtemp(prefix="runnel-cli-data.")

    def tearDown(self):
        for b in self.brokers:
            b.kill()

    def start(self, args):
        b = Runnel(args)
        self.brokers.append(b)
        return b

    def write_properties(self, text):
        path = os.path.join(self.tmp, "server.properties")
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_file_then_overrides_win(self):
        path = self.write_properties(
            "# a comment\nlisteners=PLAINTEXT://127.0.0.1:0\nlog.dirs=%s/a\n"
            "num.partitions = 2\n" % self.tmp)
        only_file = self.start([path])
        self.assertEqual(partitions_of_new_topic(only_file.wait_listening(), "from-file"), 2)
        self.assertEqual(only_file.stop(), 0)

        overridden = self.start([path, "--override", "num.partitions=4",
                                 "--override", "log.dirs=%s/b" % self.tmp])
        self.assertEqual(partitions_of_new_topic(overridden.wait_listening(), "overridden"), 4)
        self.assertEqual(overridden.stop(signal.SIGINT), 0)
        self.assertIn(b"Shut down cleanly", overridden.output())

    def test_unknown_key_is_a_warning(self):
        b = self.start(["--override", "listeners=PLAINTEXT://127.0.0.1:0",
                        "--override", "log.dirs=%s/c" % self.tmp,
                        "--override", "no.such.key=1"])
        b.wait_listening()
        self.assertRegex(b.output(), rb"WARN .*no\.such\.key")
        self.assertEqual(b.stop(), 0)

    def test_malformed_values_stop_startup_naming_the_key(self):
        for key, value in [("num.partitions", "abc"), ("message.max.bytes", "-5"),
                           ("listeners", "nonsense"), ("auto.create.topics.enable", "maybe")]:
            b = self.start(["--override", "log.dirs=%s/d" % self.tmp,
                            "--override", "%s=%s" % (key, value)])
            self.assertEqual(b.proc.wait(20), 1, key)
            self.assertIn(key.encode(), b.output(), key)
            self.assertNotIn(b"Listening on", b.output(), key)

    def test_bad_arguments(self):
        for args in (["--override"], ["--override", "novalue"], ["--bogus-flag"]):
            b = self.start(args)
            self.assertNotEqual(b.proc.wait(20), 0, args)


if __name__ == "__main__":
    unittest.main()
