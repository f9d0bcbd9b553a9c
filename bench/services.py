"""Throwaway PostgreSQL and Redis servers on loopback, and the app servers under test.

Everything here runs on 127.0.0.1 on free ports, in temporary directories,
and is stopped (its whole process group) when the bench ends.
"""

from __future__ import annotations

import contextlib
import glob
import http.client
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop(process: subprocess.Popen, timeout: float = 20) -> None:
    """Stop `process` and everything in its process group."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


class Services(contextlib.ExitStack):
    """PostgreSQL and Redis for the bench: private instances, or none when not installed."""

    def __init__(self):
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="passwordless-bench-"))
        self.callback(shutil.rmtree, self.tmp, ignore_errors=True)
        self.postgres_port: int | None = None
        self.redis_port: int | None = None
        self.notes: list[str] = []
        self._databases = 0
        self._redis_dbs = 0

    # PostgreSQL ------------------------------------------------------------------

    def start_postgres(self) -> bool:
        binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
        if not binaries:
            self.notes.append("PostgreSQL is not installed: SQLite files instead")
            return False
        bindir = Path(binaries[-1]).parent
        data = self.tmp / "pg"
        data.mkdir()
        # PostgreSQL refuses to run as root: run it as the postgres user then.
        as_user = {}
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.tmp, user.pw_uid, user.pw_gid)
            os.chown(data, user.pw_uid, user.pw_gid)
            as_user = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}

        subprocess.run(  # noqa: S603 (our own commands, no shell)
            [bindir / "initdb", "-D", data, "-U", "bench", "--auth=trust", "-E", "UTF8"],
            check=True,
            capture_output=True,
            **as_user,
            cwd=self.tmp,
        )
        port = free_port()
        process = subprocess.Popen(  # noqa: S603 (our own commands, no shell)
            [
                bindir / "postgres",
                "-D",
                data,
                "-p",
                str(port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"unix_socket_directories={data}",
                "-c",
                "max_connections=200",
            ],
            stdout=subprocess.DEVNULL,
            stderr=(self.tmp / "postgres.log").open("wb"),
            **as_user,
            start_new_session=True,
            cwd=self.tmp,
        )
        self.callback(stop, process)
        wait_for_port(port, process)
        self.postgres_port = port
        self._pg_ready(port)
        return True

    def _pg_ready(self, port: int) -> None:
        import psycopg

        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg.connect(
                    host="127.0.0.1", port=port, user="bench", dbname="postgres"
                ).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def database_url(self, name: str) -> str:
        """Create a fresh database and return its URL (a SQLite file without PostgreSQL)."""
        self._databases += 1
        if self.postgres_port is None:
            return f"sqlite:///{self.tmp / f'{name}.sqlite3'}"
        import psycopg

        with psycopg.connect(
            host="127.0.0.1",
            port=self.postgres_port,
            user="bench",
            dbname="postgres",
            autocommit=True,
        ) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return f"postgres://bench@127.0.0.1:{self.postgres_port}/{name}"

    # Redis ---------------------------------------------------------------------------

    def start_redis(self) -> bool:
        binary = shutil.which("redis-server")
        if not binary:
            self.notes.append("Redis is not installed")
            return False
        port = free_port()
        process = subprocess.Popen(  # noqa: S603 (our own commands, no shell)
            [
                binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--databases",
                "32",
            ],
            stdout=(self.tmp / "redis.log").open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=self.tmp,
        )
        self.callback(stop, process)
        wait_for_port(port, process)
        self.redis_port = port
        return True

    def cache_url(self) -> str:
        """Return the URL of a Redis database of its own."""
        assert self.redis_port, "Redis is needed: DEBUG off refuses a cache that is not shared"
        self._redis_dbs += 1
        return f"redis://127.0.0.1:{self.redis_port}/{self._redis_dbs}"

    def versions(self) -> str:
        """Name the PostgreSQL and Redis versions in use."""
        import redis

        parts = []
        if self.postgres_port:
            import psycopg

            with psycopg.connect(
                host="127.0.0.1", port=self.postgres_port, user="bench", dbname="postgres"
            ) as connection:
                version = connection.execute("SHOW server_version").fetchone()[0]
            parts.append(f"PostgreSQL {version.split()[0]}")
        if self.redis_port:
            client = redis.Redis(host="127.0.0.1", port=self.redis_port)
            parts.append(f"Redis {client.info('server')['redis_version']}")
            client.close()
        return ", ".join(parts)

    def redis_commands(self, url: str) -> int:
        """Return how many commands Redis has run so far (all databases)."""
        import redis

        client = redis.Redis.from_url(url)
        try:
            stats = client.info("commandstats")
        finally:
            client.close()
        return sum(entry["calls"] for name, entry in stats.items() if name != "cmdstat_info")


@dataclass
class AppServer:
    """A gunicorn serving one Django settings module, its output in a file."""

    name: str
    port: int
    log: Path
    process: subprocess.Popen

    def worker_pids(self) -> list[int]:
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in path.read_text().split()]

    def connection(self, timeout: float = 30) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)


def cpu_seconds(pid: int) -> float:
    """Return the CPU time (user + system) process `pid` has used, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of the line; 12 and 13 after ")".
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def manage(settings_module: str, env: dict, *args: str) -> None:
    done = subprocess.run(  # noqa: S603 (our own commands, no shell)
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env={**env, "DJANGO_SETTINGS_MODULE": settings_module},
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stdout}{done.stderr}")


def start_app(
    stack: contextlib.ExitStack,
    *,
    name: str,
    settings_module: str,
    env: dict,
    log_dir: Path,
    gunicorn_args: tuple[str, ...] = (),
) -> AppServer:
    """Migrate, collect static files and start gunicorn (gunicorn.conf.py) for one app."""
    manage(settings_module, env, "migrate", "--noinput", "-v0")
    manage(settings_module, env, "createcachetable")
    manage(settings_module, env, "collectstatic", "--noinput", "-v0")
    port = free_port()
    log = log_dir / f"{name}.log"
    process = subprocess.Popen(  # noqa: S603 (our own commands, no shell)
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--config",
            str(BASE_DIR / "gunicorn.conf.py"),
            "--bind",
            f"127.0.0.1:{port}",
            *gunicorn_args,
        ],
        cwd=BASE_DIR,
        env={**env, "DJANGO_SETTINGS_MODULE": settings_module},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    stack.callback(stop, process)
    server = AppServer(name=name, port=port, log=log, process=process)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn for {name} exited:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError):
            connection = server.connection(timeout=2)
            connection.request("GET", "/", headers={"X-Forwarded-Proto": "https"})
            if connection.getresponse().status < 500:
                return server
        time.sleep(0.2)
    raise RuntimeError(f"gunicorn for {name} did not answer:\n{log.read_text()[-3000:]}")
