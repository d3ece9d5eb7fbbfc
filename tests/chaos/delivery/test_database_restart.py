"""PostgreSQL really restarts in the middle of a send, twice: first a crash (`pg_ctl restart
-m immediate`: no shutdown checkpoint, WAL recovery on start), later a fast shutdown and
start (`-m fast`), each while the workers are sending. Afterwards every reader has exactly
one copy and every delivery is final.

The server is the test's own, never the machine's shared one: initdb into a directory under
/tmp, a free port on 127.0.0.1, trust authentication, its socket in that directory. As root
(initdb refuses to run as root) its tools run as the `postgres` system user.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.support.chaos import send_through
from tests.support.processes import REPO, free_port

pytestmark = pytest.mark.chaos
SERVER_USER = "postgres"  # who runs the server when the test runs as root


def postgres_bindir() -> Path:
    """The newest PostgreSQL server binaries on this machine; fails the test (never skips)
    when there are none: scripts/test.sh installs Debian's `postgresql` package."""
    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", path.parent.name)) or (0,)

    candidates = sorted((p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")), key=version)
    pg_config = shutil.which("pg_config")
    if pg_config:
        found = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False).stdout.strip()
        if found and Path(found).is_dir():
            candidates.insert(0, Path(found))  # pg_config may be libpq's: only a fallback to the newest server
    on_path = shutil.which("initdb")
    if on_path:
        candidates.insert(0, Path(on_path).resolve().parent)
    for bindir in reversed(candidates):
        if all((bindir / tool).is_file() for tool in ("initdb", "pg_ctl", "pg_isready", "postgres")):
            return bindir
    pytest.fail("PostgreSQL server binaries (initdb, pg_ctl, postgres) not found in /usr/lib/postgresql/*/bin, "
                "pg_config --bindir or PATH: install Debian's `postgresql` package (scripts/test.sh does)",
                pytrace=False)


class ThrowawayPostgres:
    """A PostgreSQL server of the test's own, in a directory it deletes afterwards."""

    def __init__(self) -> None:
        self.bindir = postgres_bindir()
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            try:
                self.owner = pwd.getpwnam(SERVER_USER)
            except KeyError:
                pytest.fail(f"running as root, and there is no {SERVER_USER!r} user to run PostgreSQL as "
                            "(Debian's `postgresql` package creates it)", pytrace=False)
        # Not pytest's tmp_path: its parents may be 0o700, which the postgres user cannot cross.
        self.root = Path(tempfile.mkdtemp(prefix="digest-pg-restart-", dir="/tmp"))
        self.root.chmod(0o755)
        self.data = self.root / "data"
        self.run_dir = self.root / "run"  # the unix socket and the server's log
        self.log = self.run_dir / "postgres.log"
        for folder in (self.data, self.run_dir):
            folder.mkdir(mode=0o700)
            if self.as_root:
                os.chown(folder, self.owner.pw_uid, self.owner.pw_gid)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _tool(self, tool: str, *args: str, timeout: float = 90) -> str:
        command = [str(self.bindir / tool), *args]
        if self.as_root:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        # pg_ctl always gets -l: the postmaster must not inherit (and hold open) our pipe.
        done = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=timeout, check=False)
        output = done.stdout.decode(errors="replace")
        if done.returncode != 0:
            raise AssertionError(f"{' '.join(command)} exited {done.returncode}:\n{output}\n{self.server_log()}")
        return output

    def server_log(self, tail: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-tail:]
        except OSError:
            return ""

    def init_and_start(self) -> None:
        self._tool("initdb", "-D", str(self.data), "--auth=trust", "-U", "postgres", "-E", "UTF8", "--no-locale",
                   "--no-sync")
        # Settings live in the data directory, so every restart keeps them. fsync=off only
        # skips flushing the kernel's cache to disk: a crash of the server (not of the
        # machine) loses nothing committed. synchronous_commit stays on for that reason.
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                       f"unix_socket_directories = '{self.run_dir}'\nfsync = off\nmax_connections = 100\n")
        self._pg_ctl("start")

    def _pg_ctl(self, action: str, *args: str) -> None:
        self._tool("pg_ctl", action, "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", *args)

    def restart(self, mode: str) -> None:
        """Stop the server (`immediate`: a crash, recovered from the WAL on start) and start
        it again; returns once it accepts connections."""
        self._pg_ctl("restart", "-m", mode)
        self.wait_ready()

    def wait_ready(self, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while subprocess.run([str(self.bindir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port),
                              "-U", "postgres"],
                             check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise AssertionError(f"the restarted PostgreSQL does not accept connections:\n{self.server_log()}")
            time.sleep(0.1)

    def destroy(self, keep_log_at: Path | None = None) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                try:
                    self._pg_ctl("stop", "-m", "immediate")
                except (AssertionError, subprocess.TimeoutExpired):
                    pid = int((self.data / "postmaster.pid").read_text().split()[0])
                    os.kill(pid, signal.SIGKILL)  # the postmaster only: its children follow it
            if keep_log_at is not None and self.log.exists():
                shutil.copyfile(self.log, keep_log_at)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def test_database_restart_mid_send(tmp_path: Path) -> None:
    server = ThrowawayPostgres()
    logs = REPO / "test-artifacts" / "restart-logs"
    try:
        server.init_and_start()
        figures = send_through("restart", server.url, tmp_path, [
            (0.3, "pg_ctl restart -m immediate", lambda: server.restart("immediate")),
            (0.65, "pg_ctl restart -m fast", lambda: server.restart("fast")),
        ], time_limit_seconds=180)
        log = server.server_log(tail=10_000_000)
        # The restarts really happened: one recovery from a crash, one clean shutdown.
        assert "database system was not properly shut down; automatic recovery in progress" in log, log[-4000:]
        assert "received fast shutdown request" in log, log[-4000:]
        assert len(figures["strikes"]) == 2, figures  # type: ignore[arg-type]
    finally:
        logs.mkdir(parents=True, exist_ok=True)
        server.destroy(keep_log_at=logs / "postgres.log")
