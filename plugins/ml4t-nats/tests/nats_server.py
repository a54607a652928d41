"""The real nats-server the bridge tests start (loopback, free port), and the run's NATS users.

A module of its own, not conftest: the suite collects several plugins' tests, and a
``from conftest import`` would find whichever conftest was imported first.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

AUTH_PREFIX = "run1"
PASSWORDS = {"driver": "pw-driver", "follower": "pw-follower", "intruder": "pw-x", "guest": "pw-g"}


def _binary() -> str:
    found = shutil.which("nats-server") or (
        "/usr/sbin/nats-server" if os.access("/usr/sbin/nats-server", os.X_OK) else None
    )
    if found is None:
        pytest.fail(
            "nats-server is not installed (not on PATH, not /usr/sbin/nats-server): the NATS "
            "bridge tests need a real server; install Debian's package (apt-get install "
            "nats-server, or run scripts/system-deps.sh as root)"
        )
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class NatsServer:
    """One nats-server process on 127.0.0.1; ``kill()`` and ``start()`` keep the port."""

    def __init__(self, binary: str, token: str | None = None, config: Path | None = None) -> None:
        self.binary = binary
        self.port = _free_port()
        self.token = token
        self.config = config
        self.url = f"nats://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        cmd = [self.binary, "-a", "127.0.0.1", "-p", str(self.port)]
        if self.token:
            cmd += ["--auth", self.token]
        if self.config is not None:
            cmd += ["-c", str(self.config)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                if self.proc.poll() is not None:
                    pytest.fail(f"nats-server exited at start with {self.proc.returncode}")
                time.sleep(0.02)
        pytest.fail(f"nats-server did not listen on {self.url} within 10 s")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None
