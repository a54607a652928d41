"""A real two-node Ray cluster on this machine, for tests: a head and a worker node.

Each node is one ``ray start --block`` process, started with the ``ray`` command of the
interpreter running the tests, exactly as on two machines (``ray start --head`` on one,
``ray start --address HEAD`` on the other) but with everything a second raylet on the
same host must not share given its own value: every port (taken free from the OS), one
temp dir of ours (each raylet gets its own sockets in it), 1 CPU and a small object
store per node, no dashboard UI. Authentication is as on a real cluster: Ray's token
mode (the default for a head started where a token exists, as ``ray.init`` makes one),
the token every node and the driver read from ``~/.ray/auth_token``
(``ray get-auth-token --generate`` makes it if missing). Neither a worker node nor a
driver joining by address turns token mode on by itself, so the nodes and this process
(while the cluster runs) are told ``RAY_AUTH_MODE=token``; a mode already set in the
tests' environment (``disabled``) is used instead.

Stopping touches only these processes. ``ray stop`` would stop every Ray on the host,
including other tests' local Rays; instead each ``ray start --block`` gets SIGTERM,
which drains its node and stops the processes it started (they also die with it:
Ray sets their parent-death signal). Every process of ours carries a marker in its
environment (:data:`MARKER`), so that anything left after that is found by the
marker, killed, and reported.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import ray

import ml4t.backtest

MARKER = "ML4T_TEST_RAY_CLUSTER"
_AUTH_MODE = "RAY_AUTH_MODE"
RAY = str(Path(sys.executable).with_name("ray"))
# where the tests import ml4t from: the nodes' workers must run the same code (on real
# machines, ml4t is installed on every node)
SOURCE_ROOT = str(Path(ml4t.backtest.__file__).resolve().parents[2])
_START_SECONDS = 60.0
_STOP_SECONDS = 40.0
_OBJECT_STORE_BYTES = 100_000_000  # Ray's minimum is 75 MiB


@dataclass(frozen=True)
class Cluster:
    address: str  # HOST:PORT of the head's GCS, as ``ray start --address`` takes it
    client_address: str  # ray://HOST:PORT of the head's Ray Client server
    node_ids: frozenset[str]
    temp_dir: Path
    env: dict[str, str] = field(repr=False)  # the nodes' (PYTHONPATH, auth, the marker)


@contextlib.contextmanager
def two_node_cluster() -> Iterator[Cluster]:
    """Start the head and one worker node, wait until both are alive, stop them after."""
    with _auth_mode(os.environ.get(_AUTH_MODE, "token")):
        yield from _cluster()


@contextlib.contextmanager
def _auth_mode(mode: str) -> Iterator[None]:
    """``RAY_AUTH_MODE`` for this process (the driver) while the cluster runs.

    Ray reads the variable into its config when imported; re-reading it is what Ray
    itself does when it turns token mode on for a local ``ray.init``.
    """
    from ray._raylet import Config

    previous = os.environ.get(_AUTH_MODE)
    os.environ[_AUTH_MODE] = mode
    Config.initialize("")
    try:
        yield
    finally:
        if previous is None:
            del os.environ[_AUTH_MODE]
        else:
            os.environ[_AUTH_MODE] = previous
        Config.initialize("")


def _cluster() -> Iterator[Cluster]:
    temp_dir = Path(tempfile.mkdtemp(prefix="ml4t-ray-"))  # short: raylet socket paths
    env = _node_env(temp_dir)
    ports = _free_ports(5)
    address = f"127.0.0.1:{ports[0]}"
    head_flags = ["--head", f"--port={ports[0]}", f"--ray-client-server-port={ports[1]}"]
    head_flags += ["--include-dashboard=false", f"--dashboard-port={ports[2]}"]
    nodes: list[subprocess.Popen[bytes]] = []
    try:
        nodes.append(_start_node(head_flags, "head", temp_dir, env))
        nodes.append(_start_node([f"--address={address}"], "worker", temp_dir, env))
        node_ids = _wait_for_nodes(address, 2, nodes, temp_dir)
        yield Cluster(address, f"ray://127.0.0.1:{ports[1]}", node_ids, temp_dir, env)
    finally:
        leftover = _stop(nodes, temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)
        if leftover:
            raise RuntimeError(f"Ray processes outlived their nodes and were killed: {leftover}")


def _node_env(temp_dir: Path) -> dict[str, str]:
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", **{MARKER: str(temp_dir)})
    paths = [SOURCE_ROOT, *env.get("PYTHONPATH", "").split(os.pathsep)]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(p for p in paths if p))
    if env[_AUTH_MODE] == "token":  # the driver (this process) finds the same token
        subprocess.run(
            [RAY, "get-auth-token", "--generate"], env=env, capture_output=True, check=True
        )
    return env


def _start_node(
    flags: list[str], name: str, temp_dir: Path, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    """``ray start --block`` for one node, with ports of its own; its log in temp_dir."""
    ports = _free_ports(8 + 16)
    command = [RAY, "start", "--block", *flags, "--node-ip-address=127.0.0.1"]
    command += ["--num-cpus=1", f"--object-store-memory={_OBJECT_STORE_BYTES}"]
    command += [f"--temp-dir={temp_dir}", "--disable-usage-stats"]
    command += [
        f"--node-manager-port={ports[0]}",
        f"--object-manager-port={ports[1]}",
        f"--dashboard-agent-listen-port={ports[2]}",
        f"--dashboard-agent-grpc-port={ports[3]}",
        f"--runtime-env-agent-port={ports[4]}",
        f"--metrics-export-port={ports[5]}",
        "--worker-port-list=" + ",".join(map(str, ports[8:])),
    ]
    with (temp_dir / f"{name}.log").open("wb") as log:  # the child holds its own copy
        return subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )


def _wait_for_nodes(
    address: str, count: int, nodes: list[subprocess.Popen[bytes]], temp_dir: Path
) -> frozenset[str]:
    """The ids of the cluster's alive nodes, once there are ``count`` of them."""
    deadline = time.monotonic() + _START_SECONDS
    alive: set[str] = set()
    while time.monotonic() < deadline:
        for node in nodes:
            if node.poll() is not None:
                raise RuntimeError(f"a Ray node exited at start:\n{_logs(temp_dir)}")
        with contextlib.suppress(ConnectionError, RuntimeError):
            ray.init(address=address, logging_level="WARNING")
            try:
                alive = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
            finally:
                ray.shutdown()
            if len(alive) >= count:
                return frozenset(alive)
        time.sleep(1.0)
    raise RuntimeError(f"{len(alive)} of {count} Ray nodes came up:\n{_logs(temp_dir)}")


def _stop(nodes: list[subprocess.Popen[bytes]], temp_dir: Path) -> list[str]:
    """SIGTERM each node (worker first), then kill what is left of ours, by the marker."""
    for node in reversed(nodes):
        if node.poll() is None:
            node.send_signal(signal.SIGTERM)
    for node in reversed(nodes):
        try:
            node.wait(timeout=_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.pid, signal.SIGKILL)
            node.wait()
    return _kill_marked(str(temp_dir))


def marked_processes(marker: str) -> dict[int, str]:
    """Live processes whose environment has ``MARKER=marker``, pid -> command line."""
    wanted = f"{MARKER}={marker}".encode()
    found: dict[int, str] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if wanted in (proc / "environ").read_bytes().split(b"\0"):
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
                found[int(proc.name)] = cmdline.decode(errors="replace").strip()
        except OSError:  # gone, or not ours to read
            continue
    return found


def _kill_marked(marker: str) -> list[str]:
    """Wait a little for our processes to exit, then kill and name the ones that did not."""
    deadline = time.monotonic() + 10.0
    while (left := marked_processes(marker)) and time.monotonic() < deadline:
        time.sleep(0.5)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return [f"{pid} {cmd[:80]}" for pid, cmd in left.items()]


def _free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports that were free a moment ago."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("", 0))  # every interface: Ray may bind beyond loopback
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _logs(temp_dir: Path, pattern: str = "*.log") -> str:
    return "\n".join(
        f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}"
        for log in sorted({path.resolve() for path in temp_dir.glob(pattern)})
    )


def client_server_logs(cluster: Cluster) -> str:
    """The head's Ray Client server logs (the proxy's and each client's own server's),
    for a failure message: Ray says only "see ray_client_server_PORT.err"."""
    found = _logs(cluster.temp_dir, "session_2*/logs/ray_client_server*")  # not session_latest
    return found or "(no client logs)"
