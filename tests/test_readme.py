"""The README's examples run as written: every shell block with a curl call, in order, in one shell, then every
Python block, against the real app on a fresh database with a real worker; and the README points only at
things inside this repository."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ADMIN_TOKEN
from tests.workers.support import WorkerProcess, worker_env

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```(sh|python)\n(.*?)```", README, re.S)


@pytest.fixture()
def readme_worker(other_deployment, redis_url, tmp_path):
    """A worker on the other deployment's database, so that the jobs the examples ask for get done."""
    env = worker_env(other_deployment.settings.database_url, redis_url, "http://127.0.0.1:9/v1", tmp_path,
                     MEMCUBE_CONSOLIDATE_ENGINE="heuristic", MEMCUBE_DISTILL_ENGINE="heuristic")
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    yield worker
    worker.stop()


def test_every_example_runs_as_written(other_deployment, readme_worker, tmp_path):
    shell = [code for lang, code in BLOCKS if lang == "sh" and "curl " in code]
    python = [code for lang, code in BLOCKS if lang == "python"]
    assert len(shell) >= 10 and python
    host = other_deployment.url.removeprefix("http://")
    script = "\n".join([
        "set -euo pipefail",
        # An answer of 400 or more stops the script: every example must succeed, not only run.
        'curl() { command curl --fail-with-body "$@"; }',
        *(code.replace("localhost:8000", host) for code in shell),
        'echo "$K" > key',
    ])
    home = tmp_path / "home"
    home.mkdir()
    (home / "admin_token").write_text(ADMIN_TOKEN + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMCUBE_")} | {"MEMCUBE_HOME": str(home)}
    result = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, f"{result.stderr[-3000:]}\n{result.stdout[-3000:]}"
    assert '"content":"The user lives in Lisbon"' in result.stdout  # the as_of search found the old city
    assert (tmp_path / "acme.ndjson").read_bytes().startswith(b'{"agent_id":null')

    key = (tmp_path / "key").read_text().strip()
    for code in python:
        ran = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                             timeout=180, env=env | {"MEMCUBE_URL": other_deployment.url, "MEMCUBE_API_KEY": key})
        assert ran.returncode == 0, ran.stderr[-3000:]


def anchors(markdown: str) -> set[str]:
    """The anchors of the headings, as GitHub makes them (a repeated one gets -1, -2, ...)."""
    prose = re.sub(r"```.*?```", "", markdown, flags=re.S)
    seen: dict[str, int] = {}
    found = set()
    for heading in re.findall(r"^#+ (.+)$", prose, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        found.add(slug if n == 0 else f"{slug}-{n}")
    return found


def test_the_readme_points_only_inside_the_repository():
    assert "MEASURED.md" not in README and "../" not in README
    known = anchors(README)
    for target in re.findall(r"\]\(([^)]+)\)", README):
        if target.startswith("#"):
            assert target[1:] in known, target
        else:
            assert not re.match(r"\w+://", target) and (ROOT / target).exists(), target
