"""Broker runs the real runnel binary for the Python integration tests.

It listens on an ephemeral 127.0.0.1 port with its own temp data dir; its
output goes to a log file in that dir. The child gets PR_SET_PDEATHSIG, so it
dies with the test process even if the test is killed; close() (or leaving
the `with` block) kills it and removes the temp dir.

The binary is $RUNNEL_BIN (set by ctest), else build/runnel in the repo.
"""

import ctypes
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

_LISTENING = re.compile(rb"Listening on PLAINTEXT://([^\s:]+):(\d+)")
_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def default_binary():
    env = os.environ.get("RUNNEL_BIN")
    if env:
        return env
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for path in ("build/runnel", "build/broker/runnel"):
        if os.path.exists(os.path.join(root, path)):
            return os.path.join(root, path)
    return os.path.join(root, "build/runnel")


def _die_with_parent():
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class BrokerError(Exception):
    pass


class Broker:
    def __init__(self, binary=None, overrides=()):
        self.binary = binary or default_binary()
        self.overrides = list(overrides)
        self.root = tempfile.mkdtemp(prefix="runnel-it-py.")
        self.data_dir = os.path.join(self.root, "data")
        os.makedirs(self.data_dir)
        self.log_path = os.path.join(self.root, "broker.log")
        self.proc = None
        self.host = None
        self.port = None

    @property
    def bootstrap(self):
        return "%s:%d" % (self.host, self.port)

    def start(self, timeout=30.0):
        """Starts the broker and waits for its Listening line; returns bootstrap."""
        if self.proc is not None:
            raise BrokerError("already running")
        args = [self.binary,
                "--override", "listeners=PLAINTEXT://127.0.0.1:0",
                "--override", "log.dirs=" + self.data_dir]
        for kv in self.overrides:
            args += ["--override", kv]
        start_at = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + timeout
        while True:
            out = self._read(start_at)
            m = _LISTENING.search(out)
            if m:
                self.host = m.group(1).decode()
                self.port = int(m.group(2))
                return self.bootstrap
            code = self.proc.poll()
            if code is not None:
                self.proc = None
                raise BrokerError("broker exited with %d before listening; output:\n%s"
                                  % (code, out.decode(errors="replace")))
            if time.monotonic() > deadline:
                self.kill()
                raise BrokerError("no Listening line within %.0f s; output:\n%s"
                                  % (timeout, out.decode(errors="replace")))
            time.sleep(0.02)

    def restart(self, timeout=30.0):
        """Starts again on the same data dir (new ephemeral port)."""
        return self.start(timeout)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=30.0):
        """SIGTERM and wait; returns the exit code (negative: killed by that signal).

        Returns None if it had not exited within timeout (it is then SIGKILLed).
        """
        if self.proc is None:
            raise BrokerError("not running")
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None
        self.proc = None
        return code

    def kill(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def output(self):
        return self._read(0).decode(errors="replace")

    def close(self):
        self.kill()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def _read(self, offset):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                return f.read()
        except FileNotFoundError:
            return b""
