"""The examples run as written against a running MemCube."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_agent_loop_runs_against_the_api(api, server):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMCUBE_")}
    env.update(MEMCUBE_URL=server, MEMCUBE_API_KEY=api.token)
    for run in range(2):
        result = subprocess.run([sys.executable, "examples/agent_loop.py"], cwd=ROOT, env=env, capture_output=True,
                                text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        assert result.stdout.count("juno: ") == 3 and "recorded trajectory" in result.stdout
    sessions = api.get("/v1/sessions", params={"agent_id": "travel-bot"}).json()["items"]
    assert len(sessions) == 2 and all(s["turns"] == 6 for s in sessions)
    trajectories = api.get("/v1/trajectories", params={"agent_id": "travel-bot"}).json()["items"]
    assert len(trajectories) == 2
    # The second run's context recalled what the first one was told.
    assert "Going by what I remember" in result.stdout
