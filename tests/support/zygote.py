"""Run the `digest` command in fresh processes without paying for its imports each time.

A fresh `digest` spends about two seconds importing SQLAlchemy, Celery, Jinja and the rest
before it reads its arguments; the command-line tests run it a hundred times. So one
"zygote" process imports the console script's module once, reads no setting and opens
nothing, and forks a child per run. Each child gets the run's folder, environment, argv
and its own stdout/stderr files, calls the console script's entry point (`digest.cli:main`)
and ends by its exit status, atexit handlers and all: a fresh process in everything but
the imports. The tests that must see the installed script itself (its shebang, its
import errors) still start it with subprocess.

Protocol, one Unix-socket connection per run: the test sends a JSON request and closes its
side; a manager forked for the connection forks the command, answers its pid at once and
its exit code when it ends.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

START_TIMEOUT_SECONDS = 60


class Zygote:
    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="digest-zygote-"))
        self.path = str(self.folder / "socket")
        env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
        env["COLUMNS"] = "200"  # as the tests' environment has it: rich reads it on import
        self.log = open(self.folder / "zygote.log", "wb")  # noqa: SIM115 - open as long as the zygote
        self.process = subprocess.Popen([sys.executable, __file__, self.path], env=env,
                                        stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not os.path.exists(self.path):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the zygote did not start: {(self.folder / 'zygote.log').read_text()}")
            time.sleep(0.05)

    def run(self, args: list[str], *, cwd: Path, env: dict[str, str],
            timeout: float) -> subprocess.CompletedProcess[str]:
        out, err = tempfile.mkstemp(dir=self.folder), tempfile.mkstemp(dir=self.folder)
        os.close(out[0]), os.close(err[0])
        request = {"args": args, "cwd": str(cwd), "env": env, "stdout": out[1], "stderr": err[1]}
        with socket.socket(socket.AF_UNIX) as conn:
            conn.connect(self.path)
            conn.sendall(json.dumps(request).encode())
            conn.shutdown(socket.SHUT_WR)
            conn.settimeout(timeout)
            answer = conn.makefile("r")
            pid = int(answer.readline())
            try:
                line = answer.readline()
            except TimeoutError:
                os.kill(pid, 9)
                raise subprocess.TimeoutExpired(["digest", *args], timeout) from None
        if not line:
            raise RuntimeError(f"the zygote's manager for {args} ended without an answer")
        stdout, stderr = Path(out[1]).read_text(), Path(err[1]).read_text()
        os.unlink(out[1]), os.unlink(err[1])
        return subprocess.CompletedProcess(["digest", *args], int(line), stdout, stderr)

    def close(self) -> None:
        self.process.kill()
        self.process.wait()
        self.log.close()
        shutil.rmtree(self.folder, ignore_errors=True)


_zygote: Zygote | None = None


def run_digest(args: list[str], *, cwd: Path, env: dict[str, str],
               timeout: float) -> subprocess.CompletedProcess[str]:
    """`digest ARGS` in `cwd` with exactly `env`, as subprocess.run(capture_output=True, text=True)."""
    global _zygote
    if _zygote is None or _zygote.process.poll() is not None:
        _zygote = Zygote()
        atexit.register(_zygote.close)
    return _zygote.run(args, cwd=cwd, env=env, timeout=timeout)


# ------------------------------------------------------------------ the zygote's side


def _serve(path: str) -> None:
    import digest.cli  # everything the console script imports, once
    from digest.config import get_settings
    from digest.store.engine import get_engine

    # Imports only: nothing read from the environment or opened that a child would inherit.
    assert get_settings.cache_info().currsize == 0 and get_engine.cache_info().currsize == 0
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path + ".tmp")
    listener.listen(64)
    os.rename(path + ".tmp", path)  # the socket appears once it accepts
    while True:
        conn, _ = listener.accept()
        while True:  # reap the managers that have answered
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    break
            except ChildProcessError:
                break
        if os.fork() == 0:
            listener.close()
            _manage(conn, digest.cli.main)
        conn.close()


def _manage(conn: socket.socket, main: object) -> None:
    request = json.loads(conn.makefile("rb").read())
    pid = os.fork()
    if pid == 0:
        conn.close()
        _command(request, main)
    conn.sendall(f"{pid}\n".encode())
    _, status = os.waitpid(pid, 0)
    conn.sendall(f"{os.waitstatus_to_exitcode(status)}\n".encode())
    os._exit(0)


def _command(request: dict[str, object], main: object) -> None:
    os.chdir(str(request["cwd"]))
    os.environ.clear()
    os.environ.update(request["env"])  # type: ignore[arg-type]
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.dup2(os.open(str(request["stdout"]), os.O_WRONLY | os.O_TRUNC), 1)
    os.dup2(os.open(str(request["stderr"]), os.O_WRONLY | os.O_TRUNC), 2)
    sys.argv = ["digest", *request["args"]]  # type: ignore[misc]
    main()  # type: ignore[operator]
    # main ends by sys.exit; SystemExit (or any error, with its traceback) unwinds to the
    # interpreter, which exits as the console script's would.
    sys.exit(0)


if __name__ == "__main__":
    _serve(sys.argv[1])
