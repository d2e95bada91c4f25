"""What the API and a worker cost while nothing happens: CPU over a quiet minute, and wake-ups, per process.

    python -m bench.idle                       # this tree, 60 s
    python -m bench.idle --tree /path/to/other/checkout --seconds 60      # the same for another version

Starts the embedded stack, then `memcube api` and `memcube worker` (from `--tree`, as `memcube up` starts them),
waits until both are ready and the worker's pool processes have settled, then samples each process tree's CPU
time (user + system, children included) and voluntary context switches over `--seconds`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import httpx
import psutil

from bench.common import ADMIN_TOKEN, DEFAULT_HOME, Bench, Report, _free_port, machine_state
from memcube.supervisor import spawn, terminate


def _tree_cpu(process: psutil.Process) -> tuple[float, int, int]:
    """CPU seconds, voluntary context switches and threads of a process and its children."""
    cpu = switches = threads = 0
    for p in [process, *process.children(recursive=True)]:
        try:
            t = p.cpu_times()
            cpu += t.user + t.system
            switches += p.num_ctx_switches().voluntary
            threads += p.num_threads()
        except psutil.Error:
            continue
    return cpu, switches, threads


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.idle", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tree", default=str(Path(__file__).resolve().parent.parent))
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--settle", type=float, default=20, help="seconds to wait after start before sampling")
    p.add_argument("--home", default=str(DEFAULT_HOME) + "-idle")
    args = p.parse_args(argv)
    report = Report("idle")
    report.say(f"# Idle cost of `memcube api` and `memcube worker` from {args.tree}\nmachine: {machine_state()}")
    bench = Bench.start(Path(args.home))
    children = {}
    try:
        url = bench.new_database("idle")
        port = _free_port()
        env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": bench.stack.redis_url, "MEMCUBE_ADMIN_TOKEN": ADMIN_TOKEN,
               "MEMCUBE_HOST": "127.0.0.1", "MEMCUBE_PORT": str(port), "MEMCUBE_LOG_LEVEL": "warning",
               "MEMCUBE_HOME": args.home, "PYTHONPATH": args.tree}
        for name in ("api", "worker"):
            children[name] = spawn([sys.executable, "-m", "memcube.cli", name], env, cwd=args.tree)
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or any(c.poll() is not None for c in children.values()):
                raise RuntimeError("the API or the worker did not start")
            time.sleep(0.5)
        time.sleep(args.settle)
        procs = {name: psutil.Process(c.pid) for name, c in children.items()}
        before = {name: _tree_cpu(p) for name, p in procs.items()}
        load_before = os.getloadavg()
        time.sleep(args.seconds)
        after = {name: _tree_cpu(p) for name, p in procs.items()}
        rows = []
        for name in procs:
            cpu = after[name][0] - before[name][0]
            # What `ps` shows as %CPU: the CPU time since start over the time since start, start-up included.
            lifetime = 100.0 * after[name][0] / (time.time() - procs[name].create_time())
            rows.append([f"memcube {name} (+ children: {len(procs[name].children(recursive=True))})",
                         100.0 * cpu / args.seconds, lifetime, after[name][0],
                         (after[name][1] - before[name][1]) / args.seconds, after[name][2]])
            report.figures[name] = {"cpu_percent": 100.0 * cpu / args.seconds, "ps_percent": lifetime,
                                    "cpu_seconds_since_start": after[name][0],
                                    "wakeups_per_s": (after[name][1] - before[name][1]) / args.seconds}
        report.table(["process", "% of a core, idle minute", "ps %CPU (since start)", "CPU s since start",
                      "voluntary switches/s", "threads"], rows,
                     title=f"## Idle for {args.seconds:.0f} s (load average before / after: "
                           f"{[round(x, 2) for x in load_before]} / {[round(x, 2) for x in os.getloadavg()]})")
    finally:
        for c in children.values():
            terminate(c)
        bench.close()
        report.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
