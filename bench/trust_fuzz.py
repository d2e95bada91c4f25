"""Schema-driven fuzzing with schemathesis: every operation of the running API's /openapi.json, called with
generated valid and invalid requests under an admin token. What must hold: no answer is a 5xx, and every error
answer has the documented shape {"error": {"code", "message", "details", "request_id"}}."""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import requests
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode

from bench.trust_load import error_shape_ok


@schemathesis.serializer("application/x-ndjson")
def _ndjson(ctx: Any, value: Any) -> bytes:
    # POST /v1/import: a string is sent as it is, a list as one JSON value a line, anything else as one line.
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    lines = value if isinstance(value, list) else [value]
    return "\n".join(json.dumps(line) for line in lines).encode("utf-8", "surrogatepass")


@dataclass
class FuzzReport:
    operations: int = 0
    calls: int = 0
    by_status: Counter = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    badly_shaped: list[str] = field(default_factory=list)
    unsatisfiable: int = 0
    seconds: float = 0.0

    def problems(self) -> list[str]:
        return [f"5xx: {e}" for e in self.server_errors] + [f"error not in shape: {e}" for e in self.badly_shaped]

    def summary(self) -> dict[str, Any]:
        return {"operations": self.operations, "calls": self.calls, "modes_without_cases": self.unsatisfiable, "seconds": round(self.seconds, 1),
                "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
                "server_errors": len(self.server_errors), "badly_shaped_errors": len(self.badly_shaped)}


class _Shape:
    """Enough of a response for `error_shape_ok`."""

    def __init__(self, response: Any) -> None:
        self._response = response

    def json(self) -> Any:
        return self._response.json()


def fuzz(base_url: str, token: str, *, max_examples: int = 20, seed: int = 13) -> FuzzReport:
    """Call every operation with `max_examples` valid and as many invalid generated requests; return what came back."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    report = FuzzReport()
    started = time.monotonic()
    headers = {"Authorization": f"Bearer {token}"}
    session = requests.Session()
    for result in schema.get_all_operations():
        operation = result.ok()
        report.operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                strategy = operation.as_strategy(generation_mode=mode)
            except Exception as exc:  # noqa: BLE001 - a schema part schemathesis cannot generate for is reported
                report.badly_shaped.append(f"{operation.label} ({mode.value}): no strategy: {exc}")
                continue

            @hypothesis.settings(max_examples=max_examples, deadline=None, database=None, derandomize=False,
                                 phases=[Phase.explicit, Phase.generate],
                                 suppress_health_check=list(HealthCheck))
            @hypothesis.seed(seed)
            @hypothesis.given(case=strategy)
            def run(case: Any) -> None:
                response = case.call(base_url=base_url, headers=headers, session=session, timeout=60)
                report.calls += 1
                report.by_status[response.status_code] += 1
                where = f"{case.method} {case.formatted_path} -> {response.status_code}"
                if response.status_code >= 500:
                    report.server_errors.append(f"{where}: {response.text[:300]} [{case.as_curl_command(headers)}]")
                elif response.status_code >= 400 and not error_shape_ok(_Shape(response)):  # type: ignore[arg-type]
                    report.badly_shaped.append(f"{where}: {response.text[:300]}")

            try:
                run()
            except hypothesis.errors.Unsatisfiable:
                # Nothing to make invalid (an operation without parameters or body): its valid calls ran.
                report.unsatisfiable += 1
    report.seconds = time.monotonic() - started
    return report
