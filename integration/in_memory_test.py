#!/usr/bin/python3
"""log.in.memory=true against a real runnel process: produce, consume and commit
offsets with kafka-python and check exact contents and offsets; the log dir must
never appear, nothing may be created on disk (checked with strace when it is
installed, and through /proc/PID/fd: the broker's files are memfds), and a
restart starts empty.

Run under Debian's /usr/bin/python3 (python3-kafka).
"""

import os
import re
import shutil
import signal
import stat
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from broker import Broker, default_binary  # noqa: E402
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402
from kafka.admin import NewTopic  # noqa: E402

STRACE = shutil.which("strace")
SETPRIV = shutil.which("setpriv")

# File syscalls that create, change or remove a name, and the open flags that write.
_CHANGING = re.compile(r"^\d+\s+(mkdir|mkdirat|rename|renameat2?|unlink|unlinkat|rmdir|creat|"
                       r"truncate|link|linkat|symlink|symlinkat|mknod|mknodat)\(")
_OPEN = re.compile(r"^\d+\s+(open|openat|openat2)\((.*)")
_WRITE_FLAGS = re.compile(r"O_WRONLY|O_RDWR|O_CREAT|O_TRUNC|O_TMPFILE")


def broker_pid(proc_pid):
    """The runnel process: proc_pid itself, or (under strace) its descendant."""
    seen = [proc_pid]
    while seen:
        pid = seen.pop()
        try:
            with open("/proc/%d/comm" % pid) as f:
                if f.read().strip() == "runnel":
                    return pid
            for task in os.listdir("/proc/%d/task" % pid):
                with open("/proc/%d/task/%s/children" % (pid, task)) as f:
                    seen += [int(c) for c in f.read().split()]
        except FileNotFoundError:
            continue
    return None


class InMemoryTest(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="runnel-it-mem.")
        self.log_dir = os.path.join(self.root, "logs")  # must never be created
        self.tmp = os.path.join(self.root, "tmp")  # TMPDIR for the broker: must stay empty
        os.mkdir(self.tmp)
        self.trace = os.path.join(self.root, "strace.txt")
        self.saved_tmpdir = os.environ.get("TMPDIR")
        os.environ["TMPDIR"] = self.tmp
        binary = None
        if STRACE and SETPRIV:
            # strace follows the broker; setpriv gives it PR_SET_PDEATHSIG again, so
            # it dies with strace (and strace with this test).
            binary = os.path.join(self.root, "traced-runnel")
            with open(binary, "w") as f:
                f.write("#!/bin/sh\nexec %s -f -qq --seccomp-bpf -o %s -e trace=%%file -- "
                        "%s --pdeathsig KILL -- %s \"$@\"\n"
                        % (STRACE, self.trace, SETPRIV, default_binary()))
            os.chmod(binary, stat.S_IRWXU)
        self.broker = Broker(binary=binary, overrides=[
            "log.in.memory=true", "log.dirs=" + self.log_dir, "offsets.topic.num.partitions=3"])
        self.traced = binary is not None

    def tearDown(self):
        if self.saved_tmpdir is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = self.saved_tmpdir
        self.broker.close()
        shutil.rmtree(self.root, ignore_errors=True)

    def stop(self):
        """SIGTERM to runnel itself (not strace); asserts a clean exit."""
        pid = broker_pid(self.broker.proc.pid)
        self.assertIsNotNone(pid)
        os.kill(pid, signal.SIGTERM)
        code = self.broker.proc.wait(60)  # strace exits with its tracee's status
        self.broker.proc = None
        self.assertEqual(code, 0, self.broker.output())

    def assert_nothing_on_disk(self):
        self.assertFalse(os.path.exists(self.log_dir))
        self.assertEqual(os.listdir(self.tmp), [])

    def assert_fds_are_not_files(self):
        pid = broker_pid(self.broker.proc.pid)
        memfds = 0
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except FileNotFoundError:
                continue
            if target.startswith("/memfd:"):
                memfds += 1
            elif target.startswith("/"):
                # Only what the harness handed it: stdin, and stdout/stderr to its log.
                self.assertIn(target, ("/dev/null", self.broker.log_path), "fd %s" % fd)
        self.assertGreater(memfds, 0)  # segments and indexes are memfds

    def test_produce_consume_commit_then_restart_empty(self):
        bootstrap = self.broker.start()
        self.assertIn("log.in.memory=true: data are kept in memory only", self.broker.output())
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
        admin.create_topics([NewTopic("mem", num_partitions=2, replication_factor=1)])

        producer = KafkaProducer(bootstrap_servers=bootstrap, retries=0, acks="all")
        sent = [(i % 2, b"k%d" % i, b"value-%d-" % i + b"x" * (i * 7)) for i in range(40)]
        futures = [producer.send("mem", key=k, value=v, partition=p) for (p, k, v) in sent]
        producer.flush(60)
        offsets = [(f.get(timeout=60).partition, f.get(timeout=60).offset) for f in futures]
        producer.close(30)
        self.assertEqual(offsets, [(i % 2, i // 2) for i in range(40)])

        consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id="mem-group",
                                 auto_offset_reset="earliest", enable_auto_commit=False,
                                 consumer_timeout_ms=20000)
        parts = [TopicPartition("mem", 0), TopicPartition("mem", 1)]
        consumer.assign(parts)
        got = []
        for message in consumer:
            got.append((message.partition, message.offset, message.key, message.value))
            if len(got) == 40:
                break
        expected = sorted((p, i // 2, k, v) for i, (p, k, v) in enumerate(sent))
        self.assertEqual(sorted(got), expected)
        consumer.commit()
        consumer.close()

        # The commit lives in __consumer_offsets, in memory too.
        committed = admin.list_consumer_group_offsets("mem-group")
        self.assertEqual({tp: meta.offset for tp, meta in committed.items()},
                         {parts[0]: 20, parts[1]: 20})
        self.assertIn("mem", admin.list_topics())
        admin.close()
        self.assert_fds_are_not_files()
        self.assert_nothing_on_disk()
        self.stop()
        self.assert_nothing_on_disk()

        if self.traced:
            with open(self.trace) as f:
                lines = f.read().splitlines()
            self.assertTrue(any("execve(" in line and "runnel" in line for line in lines))
            bad = [line for line in lines if _CHANGING.match(line) or
                   (_OPEN.match(line) and _WRITE_FLAGS.search(_OPEN.match(line).group(2)))]
            self.assertEqual(bad, [])

        # A restart starts empty: no topic, no committed offset.
        bootstrap = self.broker.restart()
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
        self.assertNotIn("mem", admin.list_topics())
        self.assertEqual(admin.list_consumer_group_offsets("mem-group"), {})
        admin.close()
        self.stop()
        self.assert_nothing_on_disk()

    @unittest.skipUnless(STRACE and SETPRIV, "strace or setpriv is not installed")
    def test_strace_sees_the_broker(self):
        # Guards the check above: a broker that is not in memory does write.
        self.broker.overrides = ["log.dirs=" + self.log_dir]
        self.broker.start()
        self.stop()
        with open(self.trace) as f:
            text = f.read()
        self.assertRegex(text, r"openat\(AT_FDCWD, \"%s/meta.properties.tmp\", [^)]*O_CREAT"
                         % re.escape(self.log_dir))
        self.assertTrue(os.path.isdir(self.log_dir))


if __name__ == "__main__":
    unittest.main()
