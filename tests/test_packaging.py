"""What ships: the wheel carries migrations, prompts, templates and the SDK, and runs from a fresh venv; the SDK
is a distribution of its own that needs only httpx and pydantic."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import tomllib
import zipfile
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SITE_PACKAGES = next(Path(p) for p in sys.path if p.endswith("site-packages") and Path(p).is_dir())


def test_the_package_list_is_complete():
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    mapped = PYPROJECT["tool"]["setuptools"]["package-dir"]
    found = {str(p.parent.relative_to(ROOT)).replace("/", ".") for top in ("memcube", "services", "workers")
             for p in (ROOT / top).rglob("__init__.py") if "__pycache__" not in p.parts}
    assert found | set(mapped) == listed
    for package, folder in mapped.items():
        assert (ROOT / folder / "__init__.py").exists(), package


def build_wheel(source: Path, out: Path) -> Path:
    """Build a wheel from a copy of `source` (no build files left in the repository), offline."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                    "-q", "-w", str(out), str(source)], check=True, capture_output=True, timeout=300)
    [wheel] = out.glob("*.whl")
    return wheel


def copy_project(dest: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    dest.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, dest / name)
    for folder in ("memcube", "services", "workers", "migrations", "sdk/python/memcube_client"):
        shutil.copytree(ROOT / folder, dest / folder, ignore=ignore)
    return dest


def fresh_venv(path: Path, wheel: Path) -> Path:
    """A new venv with the wheel installed by pip; its dependencies come from this run's venv (linked by a .pth
    file, which adds the folder without running the editable-install hooks that live there)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, timeout=120)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(path / "bin" / "python"), "install", "-q",
                    "--no-deps", "--no-index", str(wheel)], check=True, capture_output=True, timeout=300)
    [site] = path.glob("lib/python*/site-packages")
    (site / "dependencies.pth").write_text(str(SITE_PACKAGES) + "\n")
    return site


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_built_wheel_migrates_and_serves_from_a_fresh_venv(tmp_path, scratch_url, redis_url):
    wheel = build_wheel(copy_project(tmp_path / "src"), tmp_path / "dist")
    names = zipfile.ZipFile(wheel).namelist()
    migrations = sorted(p.name for p in (ROOT / "migrations").glob("*.sql"))
    assert sorted(n.rsplit("/", 1)[1] for n in names if n.startswith("memcube/migrations/") and n.endswith(".sql")) \
        == migrations
    assert "memcube/prompts/consolidate_v1.txt" in names and "memcube_client/client.py" in names
    assert "services/dashboard/templates/base.html" in names and "services/dashboard/static/dashboard.css" in names

    venv = tmp_path / "venv"
    site = fresh_venv(venv, wheel)
    work = tmp_path / "elsewhere"  # not the repository: nothing may come from the source tree
    work.mkdir()
    where = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import memcube.migrate, services.api.app, memcube_client; "
                            "print(memcube.migrate.migrations_dir()); print(services.api.app.__file__)"],
                           cwd=work, capture_output=True, text=True, check=True)
    assert all(line.startswith(str(site)) for line in where.stdout.split()), where.stdout

    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMCUBE_") and k not in ("DATABASE_URL",
                                                                                               "REDIS_URL")}
    env.update(DATABASE_URL=scratch_url, REDIS_URL=redis_url, MEMCUBE_EMBEDDER="hash", MEMCUBE_HOME=str(work),
               MEMCUBE_ADMIN_TOKEN="wheel-test-admin-token", MEMCUBE_PORT=str(free_port()))
    migrate = subprocess.run([str(venv / "bin" / "memcube"), "migrate"], cwd=work, env=env, capture_output=True,
                             text=True, timeout=120)
    assert migrate.returncode == 0, migrate.stderr
    assert migrate.stdout.strip() == f"applied {len(migrations)} migration(s): {', '.join(migrations)}"

    base = f"http://127.0.0.1:{env['MEMCUBE_PORT']}"
    api = subprocess.Popen([str(venv / "bin" / "memcube"), "api"], cwd=work, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(base + "/readyz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert api.poll() is None and time.monotonic() < deadline, api.stderr.read() if api.poll() else "slow"
            time.sleep(0.3)
        auth = {"Authorization": "Bearer wheel-test-admin-token"}
        created = httpx.post(base + "/v1/memories", headers=auth, json={"agent_id": "a", "content": "From a wheel"})
        assert created.status_code == 201, created.text
        docs = httpx.get(base + "/docs").text
        assert "/docs-assets/swagger-ui-bundle.js" in docs and "cdn" not in docs.lower()
        assert httpx.get(base + "/docs-assets/swagger-ui-bundle.js").status_code == 200
        assert "<form" in httpx.get(base + "/dashboard/signin").text
    finally:
        api.terminate()
        api.wait(30)


def test_the_sdk_is_a_distribution_of_its_own_with_two_dependencies(tmp_path):
    source = tmp_path / "sdk"
    shutil.copytree(ROOT / "sdk" / "python", source, ignore=shutil.ignore_patterns("__pycache__", "build",
                                                                                   "*.egg-info"))
    wheel = build_wheel(source, tmp_path / "dist")
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(archive.read(n).decode() for n in archive.namelist() if n.endswith("METADATA"))
        tops = {n.split("/")[0] for n in archive.namelist() if not n.split("/")[0].endswith(".dist-info")}
    requires = sorted(line.split(":", 1)[1].strip().split(">")[0] for line in metadata.splitlines()
                      if line.startswith("Requires-Dist:"))
    assert requires == ["httpx", "pydantic"] and tops == {"memcube_client"}
    site = fresh_venv(tmp_path / "venv", wheel)
    loaded = subprocess.run([str(tmp_path / "venv" / "bin" / "python"), "-c",
                             "import json, sys, memcube_client; print(memcube_client.__file__); "
                             "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"],
                            cwd=tmp_path, capture_output=True, text=True, check=True).stdout.split("\n")
    assert loaded[0].startswith(str(site))
    assert not {"memcube", "services", "fastapi", "psycopg", "torch", "redis", "celery"} & set(json.loads(loaded[1]))


@pytest.mark.parametrize("module", ["memcube"])
def test_the_library_imports_nothing_from_the_layers_above(module):
    found = [str(p.relative_to(ROOT)) for p in (ROOT / module).rglob("*.py")
             if any(f"{word} services" in line or f"{word} workers" in line
                    for line in p.read_text().splitlines() for word in ("from", "import"))]
    assert found == []
