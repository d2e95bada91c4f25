"""docker-compose.yml cannot run here (no Docker engine), so check its wiring: every app service runs a real
`memcube` command with settings that exist, and those commands start against the test stack with that environment."""

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

from services.cli.commands import COMMANDS
from memcube.config import Settings, env_name

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SETTING_VARS = {env_name(name) for name in Settings.model_fields}
INTERPOLATION = re.compile(r"\$\{(\w+)(?::([-?])([^}]*))?\}")


def interpolate(value: str, env: dict[str, str]) -> str:
    """Resolve compose's ${VAR}, ${VAR:-default} and ${VAR:?error} forms."""
    def replace(match: re.Match) -> str:
        name, op, arg = match.groups()
        if env.get(name):
            return env[name]
        if op == "?":
            raise KeyError(f"{name}: {arg}")
        return arg or ""
    return INTERPOLATION.sub(replace, value)


def app_services():
    return {name: svc for name, svc in COMPOSE["services"].items() if "build" in svc}


def test_every_app_service_runs_a_memcube_command_with_known_settings():
    services = app_services()
    assert {"migrate", "api", "worker", "beat"} <= set(services)
    for name, service in services.items():
        command = service["command"]
        assert command[0] == "memcube" and command[1] in COMMANDS, name
        unknown = set(service["environment"]) - SETTING_VARS
        assert not unknown, f"{name} sets variables no setting reads: {unknown}"
    assert COMPOSE["services"]["api"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_the_admin_token_is_required_not_defaulted():
    env = COMPOSE["services"]["api"]["environment"]
    try:
        interpolate(env["MEMCUBE_ADMIN_TOKEN"], {})
    except KeyError as exc:
        assert "MEMCUBE_ADMIN_TOKEN" in str(exc)
    else:
        raise AssertionError("compose must refuse to start without MEMCUBE_ADMIN_TOKEN")


def test_secrets_come_from_the_env_file_not_from_compose():
    text = (ROOT / "docker-compose.yml").read_text()
    required = {name for name, op, _ in INTERPOLATION.findall(text) if op == "?"}
    assert required == {"MEMCUBE_ADMIN_TOKEN", "POSTGRES_PASSWORD"}
    example = dict(line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines()
                   if line and not line.startswith("#"))
    assert required <= set(example) and all(example[name] == "" for name in required)
    assert {name for name, _, _ in INTERPOLATION.findall(text)} <= set(example) | {"MEMCUBE_EMBEDDER"}
    assert ".env" in (ROOT / ".gitignore").read_text().split() and ".env" in (ROOT / ".dockerignore").read_text().split()
    postgres = COMPOSE["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"]
    assert interpolate(postgres, {"POSTGRES_PASSWORD": "s3cret"}) == "s3cret"
    url = COMPOSE["services"]["api"]["environment"]["DATABASE_URL"]
    assert interpolate(url, {"POSTGRES_PASSWORD": "s3cret"}) == "postgresql://memcube:s3cret@postgres:5432/memcube"


def test_services_keep_their_healthchecks_and_the_image_runs_the_wheel_alone():
    assert {name for name, svc in COMPOSE["services"].items() if "healthcheck" in svc} == \
        {"postgres", "redis", "api", "mcp"}
    stages = (ROOT / "Dockerfile").read_text().split("\nFROM ")
    build, runtime = stages[-2], stages[-1]
    copied = {line.split()[1] for line in build.splitlines() if line.startswith("COPY ")}
    assert {"migrations", "memcube", "services", "workers", "sdk/python/memcube_client"} <= copied
    assert [line for line in runtime.splitlines() if line.startswith("COPY")] == ["COPY --from=build /dist /dist"]
    assert "pip install --no-cache-dir /dist/*.whl" in runtime


def executable(command: list[str]) -> list[str]:
    """The container's `memcube` is the one installed beside this Python."""
    return [str(Path(sys.executable).parent / command[0]), *command[1:]]


def run_env(service: str, database_url: str, redis_url: str, port: int) -> dict[str, str]:
    host_env = {"MEMCUBE_ADMIN_TOKEN": "compose-test-admin-token", "POSTGRES_PASSWORD": "from-dot-env"}
    env = {k: interpolate(str(v), host_env) for k, v in COMPOSE["services"][service]["environment"].items()}
    # Point the container host names at the test stack, and stay on loopback.
    env.update(DATABASE_URL=database_url, REDIS_URL=redis_url)
    if "MEMCUBE_HOST" in env:
        env.update(MEMCUBE_HOST="127.0.0.1", MEMCUBE_PORT=str(port))
    # The test run's ONNX export, instead of a new one in the home of each process.
    cache = {"MEMCUBE_MODEL_CACHE": os.environ["MEMCUBE_MODEL_CACHE"]} if "MEMCUBE_MODEL_CACHE" in os.environ else {}
    return {**{k: v for k, v in os.environ.items() if k not in SETTING_VARS}, **cache, **env}


def test_migrate_then_api_start_with_the_compose_environment(database_url, redis_url):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    migrate = subprocess.run(executable(COMPOSE["services"]["migrate"]["command"]),
                             env=run_env("migrate", database_url, redis_url, port), capture_output=True, text=True,
                             timeout=120)
    assert migrate.returncode == 0, migrate.stderr
    assert "nothing to apply" in migrate.stdout
    api = subprocess.Popen(executable(COMPOSE["services"]["api"]["command"]), env=run_env("api", database_url, redis_url, port),
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert api.poll() is None, api.stderr.read()
            time.sleep(0.5)
        else:
            raise AssertionError("api did not become ready")
        auth = {"Authorization": "Bearer compose-test-admin-token"}
        assert httpx.get(f"http://127.0.0.1:{port}/v1/memories", headers=auth).status_code == 200
    finally:
        api.terminate()
        api.wait(30)


def wait_in_log(path: Path, process: subprocess.Popen, text: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in path.read_text(errors="replace"):
            return
        assert process.poll() is None, path.read_text(errors="replace")[-3000:]
        time.sleep(0.5)
    raise AssertionError(f"{text!r} never appeared:\n{path.read_text(errors='replace')[-3000:]}")


def test_worker_and_beat_start_with_the_compose_environment_and_talk_through_the_broker(database_url, redis_url,
                                                                                         tmp_path):
    started = []
    try:
        for service in ("worker", "beat"):
            env = run_env(service, database_url, redis_url, 0)
            # The container's own home, and a scan every second so that beat has something to send at once.
            env.update(MEMCUBE_HOME=str(tmp_path / service), MEMCUBE_SCAN_INTERVAL_SECONDS="1")
            log = tmp_path / f"{service}.log"
            with log.open("wb") as out:
                started.append((subprocess.Popen(executable(COMPOSE["services"][service]["command"]), env=env,
                                                 stdout=out, stderr=subprocess.STDOUT), log))
        (worker, worker_log), (beat, beat_log) = started
        wait_in_log(worker_log, worker, "worker process ready")
        wait_in_log(beat_log, beat, "Sending due task scan")
        # Beat's message reached the worker through the broker, and the worker ran it against the database.
        wait_in_log(worker_log, worker, "Task memcube.scan[")
        wait_in_log(worker_log, worker, "succeeded in")
        assert list((tmp_path / "beat").glob("beat-schedule*"))
    finally:
        for process, _ in started:
            process.terminate()
        for process, _ in started:
            process.wait(60)
    assert [process.returncode for process, _ in started] == [0, 0]
