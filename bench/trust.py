"""Trust under load and faults: `python -m bench.trust [--seconds 300] [--clients 16]`.

Starts a deployment of its own (embedded PostgreSQL, Redis, one `memcube api`, one `memcube worker`) in a
temporary folder, then:

1. load: `--clients` concurrent clients write (single creates, batches of 10, session appends), search and
   assemble contexts for `--seconds`; request counts, errors by status, p50/p99 per operation; afterwards every
   acknowledged write is read back (lost must be 0);
2. faults, each checked for nothing lost or duplicated: the API killed with SIGKILL mid-batch (each batch whole
   or absent), the worker killed mid-job (the job completes exactly once), Redis restarted, PostgreSQL
   restarted (503 while down, then the same API process serves again);
3. fuzzing: schemathesis against /openapi.json, every operation, valid and invalid requests, admin token:
   no 5xx, every error in the documented shape.

Prints the figures as it goes and a JSON summary at the end (`--json` writes it to a file too). Exits 1 when a
check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench import trust_faults
from bench.trust_fuzz import fuzz
from bench.trust_load import reconcile, run_load, run_sync
from bench.trust_stack import TrustStack

ROOT = Path(__file__).resolve().parent.parent


def _print(title: str, value: Any) -> None:
    print(f"\n== {title}", flush=True)
    print(json.dumps(value, indent=2, default=str), flush=True)


def load_check(stack: TrustStack, *, clients: int, seconds: float, tenants: int = 4) -> dict[str, Any]:
    tokens = [stack.new_key() for _ in range(tenants)]
    tally = run_sync(run_load(stack.url, tokens, clients=clients, seconds=seconds))
    started = time.monotonic()
    missing = run_sync(reconcile(stack.url, tally.acknowledged))
    summary = tally.summary()
    summary.update(clients=clients, lost=len(missing), reconcile_seconds=round(time.monotonic() - started, 1))
    problems = [f"{n} answers {status}" for status, n in tally.errors_by_status().items()]
    problems += [f"{len(missing)} acknowledged writes not readable"] if missing else []
    problems += [f"error not in shape: {e}" for e in tally.bad_errors[:5]]
    return {"name": "load", **summary, "problems": problems}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.trust", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=300, help="length of the load phase (default 300)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients of the load phase")
    parser.add_argument("--embedder", default="onnx", help="MEMCUBE_EMBEDDER of the deployment (default onnx)")
    parser.add_argument("--fuzz-examples", type=int, default=50,
                        help="generated requests per operation and mode (valid, invalid)")
    parser.add_argument("--skip", action="append", default=[], choices=["load", "faults", "fuzz"])
    parser.add_argument("--home", type=Path, help="folder of the deployment (default: a temporary one)")
    parser.add_argument("--json", type=Path, help="write the summary here too")
    args = parser.parse_args(argv)

    # The ONNX export is made once per machine: reuse the test suite's if there is one.
    cache = ROOT / ".memcube-test" / "models"
    if "MEMCUBE_MODEL_CACHE" not in os.environ and cache.exists():
        os.environ["MEMCUBE_MODEL_CACHE"] = str(cache)
    home = args.home or Path(tempfile.mkdtemp(prefix="mctrust-"))
    started = datetime.now(timezone.utc)
    results: list[dict[str, Any]] = []
    print(f"starting a deployment in {home} (embedder {args.embedder})", flush=True)
    stack = TrustStack(home, embedder=args.embedder).start()
    try:
        if "load" not in args.skip:
            results.append(load_check(stack, clients=args.clients, seconds=args.seconds))
            _print("load", results[-1])
        if "faults" not in args.skip:
            for check in (trust_faults.api_killed_mid_batch, trust_faults.worker_killed_mid_job,
                          trust_faults.redis_restarted, trust_faults.postgres_restarted):
                results.append(check(stack))
                _print(results[-1]["name"], results[-1])
        if "fuzz" not in args.skip:
            report = fuzz(stack.url, stack.admin_token, max_examples=args.fuzz_examples)
            results.append({"name": "schemathesis", **report.summary(), "problems": report.problems()[:20]})
            _print("schemathesis", results[-1])
    finally:
        stack.stop()
    failed = [r["name"] for r in results if r["problems"]]
    summary = {"date": started.isoformat(timespec="seconds"), "embedder": args.embedder,
               "checks": {r["name"]: "ok" if not r["problems"] else "FAILED" for r in results},
               "results": results}
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2, default=str))
    print("\n== summary")
    for r in results:
        print(f"  {r['name']:<26} {'ok' if not r['problems'] else 'FAILED: ' + '; '.join(r['problems'][:3])}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
