"""A private redis-server for integration tests: a free loopback port, a fresh
temporary directory, stopped by pid. Never the default port 6379 (a Redis the
machine runs for something else may be there).

    from redis_server import RedisServer, have_redis

    @unittest.skipUnless(have_redis(), "needs redis-server and python3-redis")
    class T(unittest.TestCase):
        def setUp(self):
            self.redis = RedisServer()
            self.addCleanup(self.redis.close)
        def test_x(self):
            r = self.redis.client()      # redis.Redis, bytes in and out
            r.set("k", "v"); r.save()
            self.redis.kill()            # SIGKILL
            self.redis.restart()         # same port and dir: dump.rdb is loaded
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"

try:
    import redis
except ImportError:  # python3-redis missing: have_redis() says so
    redis = None


def have_redis():
    """Whether redis-server and the Python redis module are both installed."""
    return redis is not None and os.access(REDIS_SERVER, os.X_OK)


def free_port():
    """A loopback port free right now (another process may take it before
    redis-server binds it: RedisServer retries)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """redis-server on 127.0.0.1:PORT with --dir a new temporary directory.

    save: the `--save` setting, "" (no automatic snapshots) by default; an
    explicit SAVE still writes dir/dump.rdb. rdb=True adds `--appendonly no
    --dbfilename dump.rdb` for tests that SAVE, restart() and expect the data
    back. extra: more `--name value` arguments.
    """

    def __init__(self, save="", rdb=False, extra=(), start_timeout=10, tries=5):
        self.dir = tempfile.mkdtemp(prefix="shardring-redis-")
        self.log_path = os.path.join(self.dir, "redis.log")
        self.save = save
        self.rdb = rdb
        self.extra = [str(a) for a in extra]
        self.start_timeout = start_timeout
        self.proc = None
        self.port = None
        for attempt in range(tries):
            try:
                self._start(free_port())
                return
            except RuntimeError:
                if attempt == tries - 1:
                    self.close()
                    raise

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}"

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def client(self, **kwargs):
        """A redis.Redis for this server (bytes, decode_responses=False)."""
        return redis.Redis(host="127.0.0.1", port=self.port, decode_responses=False, **kwargs)

    def args(self, port):
        args = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1",
                "--dir", self.dir, "--daemonize", "no", "--protected-mode", "no",
                "--logfile", self.log_path, "--save", self.save]
        if self.rdb:
            args += ["--appendonly", "no", "--dbfilename", "dump.rdb"]
        return args + self.extra

    def _start(self, port):
        self.proc = subprocess.Popen(self.args(port), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.port = port
        deadline = time.time() + self.start_timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                break  # exited: most likely the port was taken meanwhile
            try:
                if self.client(socket_timeout=1).ping():
                    return
            except redis.exceptions.RedisError:
                pass  # not listening yet, or still loading the dump
            time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"redis-server on port {port} did not start:\n" + self.log_tail())

    def log_tail(self, n=20):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return "(no log)"

    def stop(self, timeout=10):
        """SIGTERM, wait; SIGKILL if it does not exit in time."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self):
        """SIGKILL (a crash: nothing is saved)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def restart(self):
        """Stop if running, then start on the same port and directory, so a
        SAVEd dump.rdb is loaded."""
        self.stop()
        self._start(self.port)

    def close(self):
        """Stop and remove the directory."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
