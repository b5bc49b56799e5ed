"""Shared pieces of the interop and Autobahn runners (Python 3 standard library only).

Building: examples with the same name in different packages all land in
`<target>/<profile>/examples/<name>` and overwrite each other, so each adapter is built on its
own and its examples are copied to `<target>/interop-bin/<crate>/` right after.

Processes: every child starts in its own process group and is registered; `Children.stop_all`
(also run at exit and on SIGINT/SIGTERM) kills each group that this runner started.
"""

import atexit
import os
import queue
import re
import shutil
import signal
import random
import socket
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INTEROP_DIR = os.path.join(ROOT, "target", "interop")

ADAPTERS = ("tether-tokio", "tether-smol", "tether-std")
EXAMPLES = ("echo_server", "interop_client", "autobahn_client")
BUILD_TIMEOUT = 1800.0
LISTEN_RE = re.compile(r"^listening on (\S+)\s*$")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def parse_adapters(text):
    """`tokio,std` or `tether-tokio,...` -> crate names, in the canonical order."""
    wanted = []
    for item in (text or "").split(","):
        item = item.strip()
        if not item:
            continue
        crate = item if item.startswith("tether-") else "tether-" + item
        if crate not in ADAPTERS:
            raise SystemExit(f"unknown adapter {item!r} (expected one of: tokio, smol, std)")
        wanted.append(crate)
    return [a for a in ADAPTERS if a in wanted] if wanted else list(ADAPTERS)


def default_target_dir():
    return os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")


def bin_dir(target_dir, crate):
    return os.path.join(target_dir, "interop-bin", crate)


PROFILE = "fast-release"


def build_examples(crates, target_dir, skip_build):
    """Builds (unless skip_build) and copies each crate's examples.

    Returns {crate: None} for a usable crate or {crate: "why not"}.
    """
    status = {}
    for crate in crates:
        dest = bin_dir(target_dir, crate)
        if not skip_build:
            # `fast-release` is the release profile without the benchmarks' fat LTO: the same
            # optimised code paths, built in a fraction of the time.
            cmd = ["cargo", "build", "--profile", PROFILE, "-p", crate, "--examples", "--target-dir", target_dir]
            log("$ " + " ".join(cmd))
            started = time.monotonic()
            try:
                done = subprocess.run(cmd, cwd=ROOT, timeout=BUILD_TIMEOUT)
            except subprocess.TimeoutExpired:
                status[crate] = f"cargo build timed out after {BUILD_TIMEOUT:.0f} s"
                continue
            if done.returncode != 0:
                status[crate] = f"cargo build failed (exit {done.returncode})"
                continue
            log(f"built {crate} examples in {time.monotonic() - started:.1f} s")
            os.makedirs(dest, exist_ok=True)
            src_dir = os.path.join(target_dir, PROFILE, "examples")
            for name in EXAMPLES:
                src = os.path.join(src_dir, name)
                if os.path.exists(src):
                    shutil.copy2(src, os.path.join(dest, name))
                elif os.path.exists(os.path.join(dest, name)):
                    os.remove(os.path.join(dest, name))  # stale copy of an example that is gone
        status[crate] = None
    return status


def example(target_dir, crate, name):
    """Path of a built example, or None."""
    path = os.path.join(bin_dir(target_dir, crate), name)
    return path if os.access(path, os.X_OK) else None


def free_port():
    """A port that was free a moment ago on every interface.

    Chosen at random below the kernel's ephemeral range (32768 and up here), so it cannot be one
    of the thousands of ports that test clients leave in TIME-WAIT; a listener that does not set
    SO_REUSEADDR (wstest's) cannot bind those. Checked by binding it, then released.
    """
    low, high = 20000, 32000
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            first = int(f.read().split()[0])
        high = min(high, first - 1)
        low = min(low, high - 1000)
    except (OSError, ValueError, IndexError):
        pass
    for _ in range(64):
        port = random.randint(low, high)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("0.0.0.0", port))
            return port
        except OSError:
            continue
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, timeout):
    """True once something accepts TCP connections on 127.0.0.1:port, False after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def listening_on_any(port):
    """True if /proc/net/tcp shows a listener on 0.0.0.0:port (how wstest binds); None if
    /proc/net/tcp cannot be read."""
    try:
        with open("/proc/net/tcp", encoding="ascii") as f:
            rows = f.read().splitlines()[1:]
    except OSError:
        return None
    want = f"00000000:{port:04X}"
    return any(r.split()[1] == want and r.split()[3] == "0A" for r in rows if len(r.split()) > 3)


class Child:
    """A started process: stdout lines go to a queue (and a log), stderr to the log."""

    def __init__(self, name, cmd, log_path, env=None, cwd=None):
        self.name = name
        self.cmd = cmd
        self.log_path = log_path
        os.makedirs(os.path.dirname(log_path), exist_ok=True)
        self.log_file = open(log_path, "wb")
        self.lines = queue.Queue()
        self.proc = subprocess.Popen(
            cmd,
            cwd=cwd or ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self.log_file,
            start_new_session=True,
        )
        self.reader = threading.Thread(target=self._pump, daemon=True)
        self.reader.start()

    def _pump(self):
        for raw in self.proc.stdout:
            self.log_file.write(raw)
            self.log_file.flush()
            self.lines.put(raw.decode("utf-8", "replace").rstrip("\r\n"))
        self.lines.put(None)

    def wait_listening(self, timeout):
        """Address from the first `listening on ADDR` line, or None (died or timed out)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                return None
            if line is None:
                return None
            m = LISTEN_RE.match(line)
            if m:
                return m.group(1)

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=5)
        self.reader.join(timeout=5)
        self.log_file.close()

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, lines=20):
        try:
            with open(self.log_path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class Children:
    """Every child this runner started; all are stopped at exit, on error and on signals."""

    def __init__(self):
        self.children = []
        atexit.register(self.stop_all)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum, _frame):
        self.stop_all()
        raise SystemExit(128 + signum)

    def start(self, name, cmd, log_path, env=None):
        child = Child(name, cmd, log_path, env=env)
        self.children.append(child)
        return child

    def stop(self, child):
        child.stop()
        if child in self.children:
            self.children.remove(child)

    def stop_all(self):
        while self.children:
            self.children.pop().stop()


def run_bounded(cmd, timeout, env=None, log_path=None):
    """Runs cmd to completion within timeout. Returns (exit code or None on timeout, stdout)."""
    log_file = open(log_path, "wb") if log_path else subprocess.DEVNULL
    try:
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log_file,
            start_new_session=True,
        )
        try:
            out, _ = proc.communicate(timeout=timeout)
            return proc.returncode, out.decode("utf-8", "replace")
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate(timeout=10)
            return None, out.decode("utf-8", "replace")
        except BaseException:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)
            raise
    finally:
        if log_path:
            log_file.close()
