"""Connecting to Ray: ``local`` (a private instance on this machine) or a cluster address.

``local`` starts Ray bound to 127.0.0.1 with no dashboard and ``workers`` CPU slots. Token
authentication stays as Ray does it: Ray >= 2.60 turns it on for a new local instance and keeps the
token in ``~/.ray/auth_token``; for a remote cluster the token comes from ``RAY_AUTH_TOKEN_PATH`` /
``RAY_AUTH_TOKEN`` / ``~/.ray/auth_token`` (Ray's own order). It is never taken on a command line,
and ``RAY_AUTH_MODE=disabled`` is refused.
"""
from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from . import LOCAL, ClusterError

# Ray uses the machine's routable address on Linux unless this is off (read when ray is imported).
_LOOPBACK_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
LOOPBACK = "127.0.0.1"


def import_ray():
    if "ray" not in sys.modules:
        os.environ.setdefault(_LOOPBACK_ONLY_ENV, "0")
    import ray
    return ray


@dataclass(frozen=True)
class Connection:
    address: str
    started_here: bool          # a local instance this process owns (shut down on close)
    cpus: int
    gpus: int

    def close(self) -> None:
        if self.started_here:
            import ray
            ray.shutdown()


def _auth_check() -> None:
    if os.environ.get("RAY_AUTH_MODE", "").strip().lower() == "disabled":
        raise ClusterError("RAY_AUTH_MODE=disabled: Studio Catalog keeps Ray's token authentication on; "
                           "unset RAY_AUTH_MODE (see docs/cluster.md)")


def _package_root() -> str:
    """The folder that holds this ``studio_app`` (a local instance's workers run the same code)."""
    return str(Path(__file__).resolve().parents[2])


def connect(address: str, workers: int | None = None) -> Connection:
    """Start or join Ray. An instance already running in this process is reused (tests share one)."""
    if not address:
        raise ClusterError("no cluster address given (use 'local' or the head node's address)")
    _auth_check()
    from . import require_ray
    ray = require_ray()
    started = False
    if not ray.is_initialized():
        try:
            if address == LOCAL:
                _start_local(ray, workers)
                started = True
            else:
                _check_reachable(address)
                ray.init(address=address, log_to_driver=False, include_dashboard=False)
        except ClusterError:
            raise
        except Exception as exc:      # unreachable head, refused token, bad address
            raise ClusterError(f"cannot connect to the cluster at {address}: {last_line(exc)}") from exc
    res = ray.cluster_resources()
    return Connection(address, started, int(res.get("CPU", 0)), int(res.get("GPU", 0)))


REACH_TIMEOUT_S = 5.0


def _check_reachable(address: str) -> None:
    """Fail in seconds, with a hint, when nothing listens at ``host:port`` (Ray itself retries for minutes)."""
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ClusterError(f"cluster address {address!r}: expected 'local' or HOST:PORT (e.g. head-node:6379)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=REACH_TIMEOUT_S).close()
    except OSError as exc:
        raise ClusterError(f"cannot reach the cluster at {address}: {exc.strerror or exc}; is the head node "
                           "started (ray start --head) and reachable on the private network?") from exc


def _start_local(ray, workers: int | None) -> None:
    if ray._private.ray_constants.ENABLE_RAY_CLUSTER:        # ray was imported before import_ray()
        ray._private.ray_constants.ENABLE_RAY_CLUSTER = False
    n = max(1, workers or (os.cpu_count() or 2))
    ray.init(num_cpus=n, num_gpus=0, include_dashboard=False, _node_ip_address=LOOPBACK,
             log_to_driver=False, configure_logging=False,
             runtime_env={"env_vars": {"PYTHONPATH": _package_root(), "OMP_NUM_THREADS": "1"}})
    ip = ray.util.get_node_ip_address()
    if ip != LOOPBACK:
        ray.shutdown()
        raise ClusterError(f"the local Ray instance did not bind to {LOOPBACK} (it chose {ip}); not used")


def last_line(exc: BaseException) -> str:
    """The useful line of a Ray error (its text carries the remote traceback)."""
    lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
    return lines[-1].strip() if lines else type(exc).__name__
