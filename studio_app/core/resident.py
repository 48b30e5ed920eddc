"""Models kept loaded after the app closes, for the next launch ("keep models loaded").

Starting the models' process costs most of the app's start-up (``import torch`` alone takes
1.4-2.2 s on a 2-core CPU; the models load in 0.4-0.5 s more). An operator who closes and reopens
the app -- a crash, a settings change, the end of a break -- would wait for all of it again. With
``ProcessorSpec.keep_loaded_s`` > 0 the app's models process does not stop when the app closes:
it *lingers* for that long, listening on a loopback TCP port, and the next launch of the app with
the same engines, weights and code adopts it in a few milliseconds.

What keeps this safe:

* **Only this user**: a client must prove it holds a 32-byte secret stored in the user's runtime
  folder (mode 0600, created once); ``multiprocessing.connection`` does the HMAC challenge both
  ways. The port listens on 127.0.0.1 only.
* **Only the same models and code**: the lingering process is found through an endpoint file
  named by a key over the processor's options, the package version, the code files' stamps and
  the weights folder's files (names, sizes, modification times). Anything changed: another key,
  so a fresh process is started; the old one times out on its own.
* **One client at a time**: the process stops listening (and removes its endpoint file) the
  moment a client is accepted; a second app starting at the same time finds no endpoint, or a
  refused connection, and starts its own models process as before.
* **It goes away**: after ``keep_loaded_s`` seconds without a client it exits; an app that
  crashes without closing leaves nothing behind (the process exits when its connection drops).

This module is Qt-free and imports no torch: ``studio-catalog gui`` asks it before Qt is imported.
"""
from __future__ import annotations

import hashlib
import json
import os
import queue
import secrets
import sys
import threading
import time
from multiprocessing.connection import Client, Listener
from pathlib import Path

CONNECT_TIMEOUT_S = 3.0
_KEY_FILE = "models.key"


def runtime_dir() -> Path:
    """The user's private folder for the endpoint files and the secret (created 0700)."""
    env = os.environ.get("STUDIO_CATALOG_RUNTIME")
    if env:
        d = Path(env)
    else:
        import platformdirs
        base = os.environ.get("XDG_RUNTIME_DIR") if sys.platform.startswith("linux") else None
        d = (Path(base) / "studio-catalog" if base and os.path.isdir(base)
             else Path(platformdirs.user_cache_dir("studio-catalog", appauthor=False)) / "run")
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    if os.name == "posix":
        st = d.stat()
        if st.st_uid != os.getuid() or st.st_mode & 0o077:
            try:
                os.chmod(d, 0o700)
            except OSError:
                pass
            st = d.stat()
            if st.st_uid != os.getuid() or st.st_mode & 0o077:
                raise PermissionError(f"{d} is not private to this user")
    return d


def _secret(d: Path) -> bytes:
    p = d / _KEY_FILE
    try:
        data = p.read_bytes()
        if len(data) == 32:
            return data
    except FileNotFoundError:
        pass
    tmp = d / f".{_KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(secrets.token_bytes(32))
    try:
        os.link(tmp, p)               # the first writer wins; everyone reads the same secret
    except FileExistsError:
        pass
    except OSError:                   # no hard links here (some file systems): a plain rename
        if not p.exists():
            os.replace(tmp, p)
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass
    return p.read_bytes()


def _stamp_tree(root: Path) -> list:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [n for n in dirnames if n != "__pycache__"]
        for n in filenames:
            if n.endswith(".py"):
                st = os.stat(os.path.join(dirpath, n))
                out.append((os.path.relpath(os.path.join(dirpath, n), root), st.st_size, st.st_mtime_ns))
    return sorted(out)


def code_stamp() -> list:
    """What identifies the running code: the version, and the source files' sizes and times (a
    bundled app: its executable's)."""
    import studio_app
    if getattr(sys, "frozen", False):
        st = os.stat(sys.executable)
        return [studio_app.__version__, sys.executable, st.st_size, st.st_mtime_ns]
    import ml
    return [studio_app.__version__, sys.executable, _stamp_tree(Path(studio_app.__file__).parent),
            _stamp_tree(Path(ml.__file__).parent)]


def _weights_stamp(weights_dir: str | None) -> list:
    from ml.weights import weights_dir as resolve
    d = Path(resolve(weights_dir))
    try:
        return [str(d.resolve())] + sorted((e.name, e.stat().st_size, e.stat().st_mtime_ns)
                                           for e in os.scandir(d) if e.is_file())
    except OSError:
        return [str(d)]


def key_for(options: dict) -> str:
    """The lingering process's name for these processor options, code and weights."""
    ident = {"options": sorted((k, str(v)) for k, v in options.items()),
             "code": code_stamp(), "weights": _weights_stamp(options.get("weights_dir"))}
    return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:24]


def _endpoint_file(key: str) -> Path:
    return runtime_dir() / f"models-{key}.json"


# ---- the client side (the app at launch) ---------------------------------------------------------
def connect(key: str, timeout: float = CONNECT_TIMEOUT_S):
    """A connection to a lingering models process for ``key`` that is ready to process, and its
    hello (``("ready", device_text, engines, pid)``); ``None`` when there is none (the usual case,
    answered without touching the network: no endpoint file)."""
    try:
        ep = _endpoint_file(key)
        info = json.loads(ep.read_text())
        port = int(info["port"])
        secret = _secret(runtime_dir())
    except (OSError, ValueError, KeyError, TypeError):
        return None
    box: dict = {}

    def attempt() -> None:
        try:
            conn = Client(("127.0.0.1", port), authkey=secret)
            conn.send(("hello", key))
            if not conn.poll(timeout):
                conn.close()
                return
            msg = conn.recv()
            if msg[0] == "ready":
                box["got"] = (conn, msg)
            else:
                conn.close()
        except ConnectionRefusedError:          # it exited without removing its file (killed)
            box["stale"] = True
        except Exception:                        # a stranger on the port, a reset, a bad answer
            pass

    t = threading.Thread(target=attempt, name="studio-catalog-resident-connect", daemon=True)
    t.start()
    t.join(timeout + 0.5)
    if box.get("stale"):
        try:
            ep.unlink()
        except OSError:
            pass
    if t.is_alive():                             # nobody answered in time: start our own
        return None
    return box.get("got")


# ---- the server side (the models process after its app closed) -----------------------------------
class _Endpoint:
    """The listening socket and its endpoint file; ``close()`` removes both."""

    def __init__(self, key: str):
        self.key = key
        self.listener = Listener(("127.0.0.1", 0), authkey=_secret(runtime_dir()))
        self.file = _endpoint_file(key)
        tmp = self.file.with_name(f".{self.file.name}.{os.getpid()}")
        tmp.write_text(json.dumps({"port": self.listener.address[1], "pid": os.getpid()}))
        os.replace(tmp, self.file)

    def close(self) -> None:
        try:
            if json.loads(self.file.read_text()).get("pid") == os.getpid():
                self.file.unlink()
        except (OSError, ValueError):
            pass
        try:
            self.listener.close()
        except OSError:
            pass


def listen(key: str) -> _Endpoint | None:
    """Start listening for the next app, unless another process already lingers for ``key``
    (one is enough) or the runtime folder cannot be used (then the caller just exits)."""
    try:
        if connect_probe(key):
            return None
        return _Endpoint(key)
    except OSError:
        return None


def detach(endpoint: _Endpoint) -> None:
    """The models process, now waiting on ``endpoint``, lets go of its app: its standard streams
    go to the null device (a launcher that waits for the app's output to end must not wait for
    this process too), and ``kill`` (SIGTERM) removes the endpoint file before it exits."""
    _detach_stdio()
    if threading.current_thread() is threading.main_thread():
        import signal

        def stop(signum, frame) -> None:     # `kill PID` while waiting: leave no endpoint behind
            endpoint.close()
            os._exit(0)
        try:
            signal.signal(signal.SIGTERM, stop)
        except (ValueError, OSError):
            pass


def _detach_stdio() -> None:
    # multiprocessing's resource tracker (a helper process of the app that started us) lives as
    # long as anyone holds its pipe, and it holds the app's standard streams: let go of it too
    try:
        from multiprocessing import resource_tracker
        tracker = getattr(resource_tracker, "_resource_tracker", None)
        fd = getattr(tracker, "_fd", None)
        if fd is not None:
            os.close(fd)
            tracker._fd = None
    except (ImportError, OSError, AttributeError):
        pass
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
        fd = os.open(os.devnull, os.O_RDWR)
        for std in (0, 1, 2):
            os.dup2(fd, std)
        os.close(fd)
    except OSError:
        pass


def connect_probe(key: str) -> bool:
    """Whether something listens at ``key``'s endpoint (a connection attempt, no handshake)."""
    import socket
    try:
        port = int(json.loads(_endpoint_file(key).read_text())["port"])
    except (OSError, ValueError, KeyError, TypeError):
        return False
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def accept(endpoint: _Endpoint, seconds: float):
    """Wait up to ``seconds`` for an app; its connection once it said hello with our key, else
    ``None`` (the time ran out: the caller exits). The endpoint is closed either way."""
    lock = threading.Lock()
    state = {"adopted": False}

    def expire() -> None:
        deadline = time.monotonic() + max(0.0, seconds)
        while time.monotonic() < deadline:
            time.sleep(min(1.0, max(0.01, deadline - time.monotonic())))
        with lock:
            if not state["adopted"]:
                endpoint.close()
                os._exit(0)          # nothing to save: the models are in memory only

    threading.Thread(target=expire, name="studio-catalog-resident-expiry", daemon=True).start()
    while True:
        try:
            conn = endpoint.listener.accept()
        except Exception:             # a failed handshake (AuthenticationError), a reset: keep waiting
            continue
        try:
            if not conn.poll(CONNECT_TIMEOUT_S):
                conn.close()
                continue
            msg = conn.recv()
        except (EOFError, OSError):
            continue
        if not (isinstance(msg, tuple) and msg[:2] == ("hello", endpoint.key)):
            try:
                conn.send(("mismatch",))
                conn.close()
            except OSError:
                pass
            continue
        with lock:
            state["adopted"] = True
        endpoint.close()
        return conn


class SocketChannel:
    """The models process's side of an adopted connection, with the interface of the pipe it had
    to its first app: ``poll``/``recv`` for requests, ``send`` for answers, ``cancelled()``.
    A reader thread turns a ``("cancel",)`` message into the flag (over a pipe, a shared event
    does that; a process from another launch cannot share one)."""

    def __init__(self, conn):
        self.conn = conn
        self._q: queue.Queue = queue.Queue()
        self._head = None
        self._cancel = threading.Event()
        threading.Thread(target=self._read, name="studio-catalog-resident-reader", daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                msg = self.conn.recv()
            except (EOFError, OSError):
                self._cancel.set()
                self._q.put(None)
                return
            if msg and msg[0] == "cancel":
                self._cancel.set()
                continue
            if msg and msg[0] == "process":
                self._cancel.clear()
            self._q.put(msg)

    def poll(self, timeout: float) -> bool:
        if self._head is None:
            try:
                self._head = (self._q.get(timeout=timeout),)
            except queue.Empty:
                return False
        return True

    def recv(self):
        if self._head is not None:
            (msg,), self._head = self._head, None
        else:
            msg = self._q.get()
        if msg is None:
            self._q.put(None)
            raise EOFError("the app went away")
        return msg

    def send(self, msg) -> None:
        self.conn.send(msg)

    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def close(self) -> None:
        try:
            self.conn.close()
        except OSError:
            pass


class RemoteProcess:
    """The app's handle on an adopted models process (not its child): what ``IsolatedProcessor``
    asks of a ``multiprocessing.Process``."""

    def __init__(self, pid: int):
        self.pid = pid
        self.lost = False
        self.exitcode = None

    def is_alive(self) -> bool:
        if self.lost:
            return False
        if os.name == "posix":
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return False
            except PermissionError:
                pass
        return True

    def join(self, timeout: float | None = None) -> None:
        end = time.monotonic() + (timeout or 0.0)
        while self.is_alive() and time.monotonic() < end:
            time.sleep(0.05)

    def terminate(self) -> None:
        self.lost = True
        if os.name == "posix":
            import signal
            try:
                os.kill(self.pid, signal.SIGTERM)
            except OSError:
                pass


class MessageCancel:
    """The cancel flag of an adopted process: ``set()`` sends ``("cancel",)`` once per photo."""

    def __init__(self, conn):
        self.conn = conn
        self._set = False

    def set(self) -> None:
        if not self._set:
            self._set = True
            try:
                self.conn.send(("cancel",))
            except (OSError, ValueError):
                pass

    def clear(self) -> None:
        self._set = False

    def is_set(self) -> bool:
        return self._set
