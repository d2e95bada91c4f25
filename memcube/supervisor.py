"""Run child processes for `memcube up` and stop them together, whatever ends first."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Linux: the child gets SIGTERM when the supervisor dies, even by SIGKILL, so nothing is orphaned.
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def spawn(argv: list[str], env: Mapping[str, str], *, own_session: bool = True,
          cwd: str | os.PathLike[str] | None = None) -> subprocess.Popen:
    """Start a child that dies with this process."""
    return subprocess.Popen(argv, env=dict(env), stdin=subprocess.DEVNULL, start_new_session=own_session,
                            cwd=cwd, preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)


def terminate(process: subprocess.Popen, *, timeout: float = 15.0) -> int | None:
    """SIGTERM, wait, then SIGKILL; return the exit code."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("process %s did not stop in %.0f s; killing it", process.pid, timeout)
            process.kill()
            process.wait(5)
    return process.returncode


@dataclass
class Supervisor:
    """Children by name; `run` returns when a signal arrives or a child exits."""

    children: dict[str, subprocess.Popen] = field(default_factory=dict)
    stopping: threading.Event = field(default_factory=threading.Event)

    def install_signal_handlers(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame: object) -> None:
        log.info("received %s; stopping", signal.Signals(signum).name)
        self.stopping.set()

    def add(self, name: str, process: subprocess.Popen) -> None:
        self.children[name] = process

    def wait_until(self, ready: Callable[[], bool], *, timeout: float) -> bool:
        """Poll `ready` until true; False on timeout, a stop request or a child exiting first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.stopping.is_set():
            if self.exited():
                return False
            if ready():
                return True
            time.sleep(0.25)
        return False

    def exited(self) -> str | None:
        """Return the name of a child that has exited, if any."""
        for name, process in self.children.items():
            if process.poll() is not None:
                return name
        return None

    def run(self) -> int:
        """Block until a stop signal (exit 0) or a child exit (exit 1)."""
        while not self.stopping.wait(0.5):
            name = self.exited()
            if name:
                log.error("%s exited with code %s; stopping everything", name, self.children[name].returncode)
                return 1
        return 0

    def stop_all(self) -> None:
        """Stop the children in reverse start order."""
        for name, process in reversed(list(self.children.items())):
            code = terminate(process)
            log.info("%s stopped (exit %s)", name, code)
