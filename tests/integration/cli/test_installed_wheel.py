"""A release as a user installs it: `python -m build` (sdist, then the wheel from it), the
wheel in a fresh venv that has only the runtime lock beside it, no source tree on the
path, then `digest demo` and `digest serve` in an empty folder outside the repository. (A broken
template stopping them in one line is tests/unit/cli's: the same check, any templates.)

The venv's interpreter starts with no PYTHONPATH and no DIGEST_ variables, in a folder of
its own, so whatever `digest` it runs is the wheel's: the test asserts so, and that the
templates, the sample feed and article, the migrations and the static files came with it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.processes import REPO, free_port, reap, web_ready

pytestmark = pytest.mark.integration

RUNTIME_LOCK = REPO / "requirements-runtime.lock"
STEP_TIMEOUT_SECONDS = 120
WEB_READY_SECONDS = 30
DEMO_READERS = 36  # the demo's default


def clean_env(venv: Path) -> dict[str, str]:
    """The shell of someone who installed the wheel: its venv first on PATH, nothing of
    the repository's (no PYTHONPATH, no VIRTUAL_ENV of pytest's venv, no DIGEST_ variable)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("DIGEST_") and k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["COLUMNS"] = "200"
    return env


def run(command: list[str | Path], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=STEP_TIMEOUT_SECONDS, check=False)
    assert result.returncode == 0, f"{command} failed ({result.returncode}):\n{result.stdout[-3000:]}\n" \
                                   f"{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv holding the runtime lock and the wheel built from the sdist, nothing else."""
    root = tmp_path_factory.mktemp("release")
    dist = root / "dist"
    venv = root / "venv"
    env = clean_env(venv)
    # No pip inside the venv: pytest's pip installs into it (--python), which saves a copy.
    run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=root, env=env)
    pip = [str(part) for part in (sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install",
                                  "-q", "--no-compile", "--no-deps")]
    # The dependencies go in while the sdist and the wheel are built: half the time.
    with (root / "pip.log").open("wb") as log:
        dependencies = subprocess.Popen([*pip, "--require-hashes", "-r", str(RUNTIME_LOCK)], cwd=root, env=env,
                                        stdout=log, stderr=subprocess.STDOUT)
    try:
        run([sys.executable, "-m", "build", "--outdir", dist, REPO], cwd=root, env=env)
    finally:
        status = dependencies.wait(timeout=STEP_TIMEOUT_SECONDS)
    assert status == 0, (root / "pip.log").read_text(errors="replace")[-3000:]
    [wheel] = dist.glob("digest-*.whl")
    run([*pip, str(wheel)], cwd=root, env=env)
    # The lock holds every requirement the wheel declares, at a version it accepts.
    run([sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "check"], cwd=root, env=env)
    return venv


def test_the_wheel_carries_its_templates_and_data(installed: Path, tmp_path: Path) -> None:
    probe = ("import digest, digest.config as c; from importlib import resources as r\n"
             "print(digest.__file__); print(c.get_settings().templates_dir)\n"
             "print(len((r.files('digest') / 'data' / 'sample_feed.json').read_bytes()))")
    out = run([installed / "bin" / "python", "-c", probe], cwd=tmp_path, env=clean_env(installed))
    module, templates, feed_bytes = out.stdout.split()
    package = Path(module).parent
    assert package.is_relative_to(installed) and not package.is_relative_to(REPO)
    assert Path(templates) == package / "templates"
    for name in ("digest", "confirm", "welcome"):
        for part in ("subject.txt", "body.html", "body.txt"):
            assert (package / "templates" / "email" / name / part).is_file()
    assert (package / "templates" / "web" / "base.html").is_file()
    assert int(feed_bytes) > 1000
    assert list((package / "store" / "migrations" / "versions").glob("0001*.py"))
    assert (package / "web" / "static" / "htmx.min.js").is_file()


def test_digest_demo_then_serve_in_an_empty_folder(installed: Path, tmp_path: Path) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    env = clean_env(installed)
    demo = run([installed / "bin" / "digest", "demo"], cwd=folder, env=env)
    assert f"{DEMO_READERS} readers" in demo.stdout and " sent" in demo.stdout, demo.stdout
    assert len(list((folder / "outbox").glob("*.eml"))) == DEMO_READERS
    assert "Traceback" not in demo.stderr

    # The demo's database is ./digest.db, the default: the web app serves its archive.
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with (tmp_path / "serve.log").open("wb") as log:
        server = subprocess.Popen([str(installed / "bin" / "digest"), "serve", "--port", str(port)], cwd=folder,
                                  env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(WEB_READY_SECONDS * 5):
            if server.poll() is not None or web_ready(base):
                break
            time.sleep(0.2)
        assert web_ready(base), (tmp_path / "serve.log").read_text(errors="replace")[-3000:]
        archive = httpx.get(f"{base}/archive", timeout=10)
        assert archive.status_code == 200 and "The featured stories from Political IQ" in archive.text
        assert httpx.get(f"{base}/subscribe", timeout=10).status_code == 200
        assert httpx.get(f"{base}/static/htmx.min.js", timeout=10).status_code == 200
    finally:
        server.terminate()
        reap(server, timeout=15)
