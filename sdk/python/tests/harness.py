"""Test harness: the real cleanroom server binary, started per test module.

The binary is built once per test run from the repository root (found
relative to this file) into a temporary directory, unless CLEANROOM_BIN
names one. Each server listens on 127.0.0.1 on a free port with its own
temporary data and scratch directories; users are created with
`cleanroom users add`, as an operator would.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import List, Optional

SDK_DIR = Path(__file__).resolve().parents[1]
REPO_DIR = SDK_DIR.parents[1]
if str(SDK_DIR) not in sys.path:
    sys.path.insert(0, str(SDK_DIR))

import cleanroom  # noqa: E402

# Debian's interpreter, which the SDK targets; subprocesses run on it too.
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable

_binary: Optional[str] = None
_lock = threading.Lock()


def binary() -> str:
    """Path of the cleanroom binary: $CLEANROOM_BIN, else built once."""
    global _binary
    if os.environ.get("CLEANROOM_BIN"):
        return os.environ["CLEANROOM_BIN"]
    with _lock:
        if _binary is None:
            tmp = tempfile.mkdtemp(prefix="cleanroom-sdk-bin-")
            atexit.register(shutil.rmtree, tmp, True)
            # cleanroom-worker goes beside cleanroom, where the server looks for it.
            for name in ("cleanroom", "cleanroom-worker"):
                out = subprocess.run(["go", "build", "-o", os.path.join(tmp, name), "./cmd/" + name],
                                     cwd=REPO_DIR, capture_output=True, text=True)
                if out.returncode != 0:
                    raise RuntimeError(f"go build ./cmd/{name} failed:\n{out.stdout}{out.stderr}")
            _binary = os.path.join(tmp, "cleanroom")
    return _binary


_LISTENING = re.compile(r"listening on (https?://\S+)")
START_TIMEOUT = 300


class Server:
    """A running `cleanroom serve` with temporary directories."""

    def __init__(self, *args: str) -> None:
        bin_path = binary()
        self.dir = tempfile.mkdtemp(prefix="cleanroom-sdk-test-")
        self.data_dir = os.path.join(self.dir, "data")
        # Its own directory in the system's temporary directory: jobs run as
        # unprivileged users, who must be able to reach it.
        self.scratch_dir = tempfile.mkdtemp(prefix="cleanroom-sdk-scratch-")
        self.log_path = os.path.join(self.dir, "server.log")
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [bin_path, "serve", "--addr", "127.0.0.1:0", "--data", self.data_dir, "--scratch", self.scratch_dir, *args],
            stdout=subprocess.PIPE, stderr=self._log, text=True)
        found: "queue.Queue[Optional[str]]" = queue.Queue()

        def drain() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                m = _LISTENING.search(line)
                if m:
                    found.put(m.group(1))
            found.put(None)  # the server exited

        self._drain = threading.Thread(target=drain, daemon=True)
        self._drain.start()
        try:
            # The first start on a machine builds the worker image (about a
            # minute) before the server listens; later starts take a moment.
            url = found.get(timeout=START_TIMEOUT)
        except queue.Empty:
            url = None
        if url is None:
            log = self.log()
            self.stop()
            raise RuntimeError(f"cleanroom serve did not start; its log:\n{log}")
        self.url = url

    def log(self) -> str:
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def add_user(self, email: str) -> str:
        """Create a user with `cleanroom users add` and return its API token
        (the last line the command prints)."""
        out = subprocess.run([binary(), "users", "add", email, "--data", self.data_dir],
                             capture_output=True, text=True, check=True)
        return out.stdout.strip().splitlines()[-1]

    def client(self, email: str, token: Optional[str] = None) -> cleanroom.Client:
        """A client for a user, created first unless a token is given."""
        return cleanroom.create_client(email, token or self.add_user(email), url=self.url)

    def env(self, **extra: str) -> dict:
        """The environment for a subprocess that talks to this server."""
        env = dict(os.environ, CLEANROOM_URL=self.url, PYTHONPATH=str(SDK_DIR))
        env.update(extra)
        return env

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._drain.join(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        shutil.rmtree(self.scratch_dir, ignore_errors=True)


def uppercase_builder(client: cleanroom.Client, name: str = "Secure Uppercase",
                      participants: Optional[List[tuple]] = None):
    """The seed's Secure Uppercase clean room, as a builder, for tests that
    need a small published clean room."""
    from cleanroom.analytics import AnalyticsDcrBuilder, PythonComputeNodeDefinition, RawDataNodeDefinition
    b = AnalyticsDcrBuilder(client=client).with_name(name).with_owner(client.user_email)
    b.add_node_definition(RawDataNodeDefinition(name="input_data_node", is_required=True))
    b.add_node_definition(PythonComputeNodeDefinition(
        name="uppercase_text_node",
        script=b'with open("/input/input_data_node") as f:\n    d = f.read()\n'
               b'with open("/output/uppercase.txt", "w") as f:\n    f.write(d.upper())\n',
        dependencies=["input_data_node"]))
    b.add_participant(client.user_email, data_owner_of=["input_data_node"], analyst_of=["uppercase_text_node"])
    for email, owner_of, analyst_of in participants or []:
        b.add_participant(email, data_owner_of=owner_of, analyst_of=analyst_of)
    return b


class GeneratedStream:
    """A binary stream of `size` deterministic bytes, generated as it is
    read and never held in memory: a 1 MiB pseudo-random block, repeated.
    Not seekable, like a pipe."""

    BLOCK = b"".join(hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(1 << 15))

    def __init__(self, size: int) -> None:
        self.size = size
        self.pos = 0

    def seekable(self) -> bool:
        return False

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            raise ValueError("reading everything at once defeats the point of a stream")
        n = min(n, self.size - self.pos)
        if n <= 0:
            return b""
        off = self.pos % len(self.BLOCK)
        out = bytearray()
        while len(out) < n:
            take = min(n - len(out), len(self.BLOCK) - off)
            out += self.BLOCK[off:off + take]
            off = 0
        self.pos += n
        return bytes(out)
