"""The README keeps up with the code: every setting, every command, every route."""

import re
from pathlib import Path

from services.cli.commands import COMMANDS
from memcube.config import Settings, env_name
from services.api.app import create_app

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_every_setting_is_documented():
    missing = [env_name(name) for name in Settings.model_fields if f"`{env_name(name)}`" not in README]
    assert missing == [], f"settings missing from the README: {missing}"


def test_every_command_is_documented():
    assert [c for c in COMMANDS if f"`memcube {c}`" not in README] == []


def test_every_route_is_documented():
    # Placeholder names differ ({id} in the README, {cube_id} in code): compare with them blanked.
    blank = lambda text: re.sub(r"\{[^}]+\}", "{}", text)  # noqa: E731
    readme = blank(README)
    paths = create_app(Settings()).openapi()["paths"]
    assert sorted(p for p in paths if blank(p) not in readme) == []
