"""`memcube up` end to end: starts the embedded stack, serves, keeps data across restarts, stops cleanly."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(home: Path, port: int, token: str) -> tuple[subprocess.Popen, list[str]]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(MEMCUBE_HOME=str(home), MEMCUBE_PORT=str(port), MEMCUBE_ADMIN_TOKEN=token)
    process = subprocess.Popen([sys.executable, "-m", "services.cli", "up"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    lines = []
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("Ctrl-C stops everything"):
            return process, lines
    process.kill()
    pytest.fail("memcube up did not come up:\n" + "".join(lines))


def processes_using(home: Path) -> list[str]:
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if str(home) in cmdline and proc.info["name"] in ("postgres", "redis-server"):
            found.append(f"{proc.pid} {cmdline}")
    return found


def background_processes(process: subprocess.Popen) -> dict[str, list[psutil.Process]]:
    """The worker (main and pool processes) and beat that `memcube up` runs, by command."""
    found: dict[str, list[psutil.Process]] = {"worker": [], "beat": []}
    for child in psutil.Process(process.pid).children(recursive=True):
        cmdline = " ".join(child.cmdline())
        for command in found:
            if f"services.cli {command}" in cmdline:
                found[command].append(child)
    return found


def wait_job(base: str, headers: dict[str, str], job_id: str) -> dict:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = httpx.get(f"{base}/v1/jobs/{job_id}", headers=headers).json()
        if job["state"] in ("succeeded", "failed"):
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not finish under `memcube up`: {job}")


def stop(process: subprocess.Popen, sig: int) -> int:
    process.send_signal(sig)
    code = process.wait(60)
    process.stdout.read()
    return code


def test_up_serves_keeps_data_across_restarts_and_stops_cleanly(tmp_path):
    home, port, token = tmp_path / "home", free_port(), "up-test-admin-token"
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {token}"}

    process, lines = start(home, port, token)
    background: dict[str, list[psutil.Process]] = {}
    try:
        # A quiet start: the banner alone, not the install, migration, Celery and model-loading chatter.
        assert lines[0] == "MemCube is up.\n" and len(lines) == 7, "".join(lines)
        output = "".join(lines)
        assert f"API:         {base}" in output and f"Admin token: {token}" in output
        assert f"Dashboard:   {base}/dashboard\n" in output
        assert httpx.get(f"{base}/readyz").status_code == 200
        created = httpx.post(f"{base}/v1/memories", headers=headers,
                             json={"agent_id": "a", "content": "The spare tyre is under the boot floor"})
        assert created.status_code == 201
        background = background_processes(process)
        assert background["worker"] and len(background["beat"]) == 1
        # The worker and its outbox relay run: a consolidation asked for over HTTP gets done.
        httpx.post(f"{base}/v1/memories", headers=headers, json={"agent_id": "b", "content": "I live in Oslo."})
        accepted = httpx.post(f"{base}/v1/agents/b/consolidate", headers=headers)
        assert accepted.status_code == 202
        job = wait_job(base, headers, accepted.json()["job_id"])
        assert (job["state"], job["engine"], job["counts"]["added"]) == ("succeeded", "heuristic", 1)
        # Every page of the dashboard works on a fresh `memcube up`, signed in with the printed token.
        with httpx.Client(base_url=base, follow_redirects=True) as browser:
            signed_in = browser.post("/dashboard/signin", data={"token": token})
            assert signed_in.status_code == 200 and "Pick a tenant" in signed_in.text
            for path in ("/dashboard", "/dashboard/agents", "/dashboard/agent?agent_id=a", "/dashboard/memories",
                         "/dashboard/memories?agent_id=a&q=spare+wheel", f"/dashboard/memories/{created.json()['id']}",
                         "/dashboard/jobs", "/dashboard/keys", "/dashboard/tenants"):
                page = browser.get(path)
                assert page.status_code == 200 and "<html" in page.text, path
            assert job["id"][:8] in browser.get("/dashboard/jobs").text
    finally:
        code = stop(process, signal.SIGTERM)
    assert code == 0
    assert processes_using(home) == []
    assert [p.pid for group in background.values() for p in group if p.is_running() and
            p.status() != psutil.STATUS_ZOMBIE] == []
    assert list(home.glob("beat-schedule*")), "beat keeps its schedule under MEMCUBE_HOME"

    process, _ = start(home, port, token)
    try:
        hits = httpx.post(f"{base}/v1/search", headers=headers,
                          json={"agent_id": "a", "query": "where is the spare wheel?"}).json()["hits"]
        assert [h["id"] for h in hits] == [created.json()["id"]]
    finally:
        code = stop(process, signal.SIGINT)
    assert code == 0
    assert processes_using(home) == []


def test_single_process_commands_explain_missing_configuration(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    for command in ("api", "worker"):
        result = subprocess.run([sys.executable, "-m", "services.cli", command], env=env, capture_output=True,
                                text=True, timeout=120)
        assert result.returncode == 2 and "DATABASE_URL and REDIS_URL must be set" in result.stderr
    result = subprocess.run([sys.executable, "-m", "services.cli", "beat"], env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2 and "REDIS_URL (or MEMCUBE_BROKER_URL) must be set" in result.stderr
    env["MEMCUBE_PORT"] = "not-a-port"
    result = subprocess.run([sys.executable, "-m", "services.cli", "api"], env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2 and "invalid configuration" in result.stderr


def test_up_with_the_port_taken_says_so_and_starts_nothing(tmp_path):
    home = tmp_path / "home"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        env.update(MEMCUBE_HOME=str(home), MEMCUBE_PORT=str(port))
        result = subprocess.run([sys.executable, "-m", "services.cli", "up"], env=env, capture_output=True,
                                text=True, timeout=120)
    assert result.returncode == 2
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr and "MEMCUBE_PORT" in result.stderr
    assert "MemCube is up" not in result.stdout and "mc_admin_" not in result.stdout + result.stderr
    assert not (home / "pg").exists() and not (home / "admin_token").exists()
