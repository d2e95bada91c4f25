"""The Python SDK (sdk/python, `memcube_client`) against the real app, database and Redis: every route,
typed answers, pages followed, typed errors, retries that honour Retry-After, the async twin."""

import http.server
import io
import threading
import time
import urllib.request
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest

import memcube_client
from memcube.config import Settings
from memcube.lessons.distill import run_distillation
from memcube_client import AsyncMemCube, MemCube, MemoryInput, models
from memcube_client._endpoint import ROUTES
from memcube_client._transport import RetryPolicy, retry_after
from services.api.app import create_app
from tests.conftest import ADMIN_TOKEN, run_async


@pytest.fixture()
def mc(api):
    with MemCube(str(api.http.base_url), api_key=api.token) as client:
        yield client


@pytest.fixture()
def admin_mc(server):
    with MemCube(server, api_key=ADMIN_TOKEN) as client:
        yield client


def test_memories_round_trip_with_typed_answers(mc, agent_id):
    created = mc.memories.create(agent_id, "Prefers email over phone calls", kind="semantic", user_id="u1",
                                 tags=["preference"], importance=0.8, metadata={"source": "chat"})
    assert isinstance(created, models.MemCube) and created.version == 1 and created.metadata == {"source": "chat"}
    batch = mc.memories.create_batch([MemoryInput(agent_id=agent_id, content=f"note {i}") for i in range(5)]
                                     + [{"agent_id": agent_id, "content": "a dict works too"}])
    assert [m.content for m in batch][-1] == "a dict works too"
    page = mc.memories.list(agent_id=agent_id, limit=2)
    assert len(page.items) == 2 and page.next_cursor
    everything = list(mc.memories.iter(agent_id=agent_id, limit=2))
    assert len(everything) == 7 and len({m.id for m in everything}) == 7

    changed = mc.memories.update(created.id, content="Prefers email, never phone", reason="clarified", if_match=1)
    assert changed.version == 2
    with pytest.raises(memcube_client.StaleVersion) as stale:
        mc.memories.update(created.id, importance=0.1, if_match=1)
    assert stale.value.status == 412 and stale.value.code == "stale_version"
    assert stale.value.details["current_version"] == 2
    cleared = mc.memories.update(created.id, valid_to=None, tags=[])
    assert cleared.tags == [] and cleared.version == 3
    first = mc.memories.get(created.id, version=1)
    assert isinstance(first, models.Version) and first.content == "Prefers email over phone calls"
    assert [v.version for v in mc.memories.history(created.id)] == [1, 2, 3]

    fused = mc.memories.fuse([batch[0].id, batch[1].id], reason="same")
    assert {m.status for m in fused.superseded} == {"superseded"}
    link = mc.memories.link(batch[2].id, batch[3].id, type="supports")
    assert link.type == "supports" and [x.id for x in mc.memories.links(batch[3].id)] == [link.id]
    forgotten = mc.memories.forget(batch[4].id, erase=True, reason="asked")
    assert forgotten.status == "forgotten" and forgotten.content == ""
    assert forgotten.model_extra["erased"] == [str(batch[4].id)]
    mc.memories.forget(batch[5].id)
    assert mc.memories.get(batch[5].id).content == "" and mc.memories.history(batch[5].id)[0].content == ""
    with pytest.raises(memcube_client.PermissionDenied):  # only an admin key may see a forgotten memory's content
        mc.memories.get(batch[5].id, include_forgotten=True)

    hits = mc.search(agent_id, "how should we contact this customer?", user_id="u1", k=3, explain=True).hits
    assert hits[0].id == created.id and hits[0].explain is not None


def test_sessions_core_context_agents_and_jobs(mc, agent_id):
    appended = mc.sessions.append("chat-1", agent_id, [{"role": "user", "content": "My order #1234 never arrived."},
                                                      memcube_client.MessageInput(role="assistant", name="juno",
                                                                                  content="Let me check #1234.")],
                                  user_id="u42")
    assert [m.turn for m in appended.messages] == [0, 1]
    assert mc.sessions.set_scratchpad("chat-1", "Goal: resend #1234").content == "Goal: resend #1234"
    window = mc.sessions.working("chat-1")
    assert window.turns == 2 and window.messages[1].name == "juno"
    assert [s.session_id for s in mc.sessions.iter(agent_id)] == ["chat-1"]

    written = mc.core.put(agent_id, "persona", "You are Juno, a calm support agent.")
    assert written.block.version == 1 and written.tokens > 0
    again = mc.core.put(agent_id, "persona", "You are Juno, brief.", if_match=1)
    assert again.block.version == 2
    assert mc.core.block(agent_id, "persona").content == "You are Juno, brief."
    assert [b.label for b in mc.core.get(agent_id).blocks] == ["persona"]

    context = mc.context(agent_id, "what happened to the order?", 500, session_id="chat-1")
    assert "You are Juno, brief." in context.text and "#1234" in context.text and context.tokens <= 500

    [summary] = [a for a in mc.agents.iter() if a.agent_id == agent_id]
    assert summary.sessions == 1 and summary.memories >= 3
    accepted = mc.agents.consolidate(agent_id, user_id="u42")
    assert accepted.state == "queued" and not accepted.existing
    job = mc.jobs.get(accepted.job_id)
    assert job.kind == "consolidate" and [j.id for j in mc.jobs.iter(agent_id=agent_id)] == [job.id]
    with pytest.raises(memcube_client.APITimeoutError):
        mc.wait_for_job(job.id, timeout=0.3, interval=0.1)  # no worker runs in these tests


def test_trajectories_lessons_and_feedback(mc, agent_id, runtime):
    steps = [{"tool": "search_flights", "action": "search flights", "observation": "3 flights found"},
             memcube_client.StepInput(tool="pay_card", action="pay by card", observation="paid, ticket issued")]
    recorded = mc.trajectories.record(agent_id, "Book a flight from Paris to Rome", steps, "success", score=0.9)
    assert recorded.outcome == "success" and [s.tool for s in recorded.steps] == ["search_flights", "pay_card"]
    assert [t.id for t in mc.trajectories.iter(agent_id)] == [recorded.id]
    accepted = mc.agents.distill(agent_id, engine="heuristic")
    run_distillation(runtime.pool, job_id=accepted.job_id, embedder=runtime.embedder, settings=runtime.settings,
                     llm=None)
    assert mc.jobs.get(accepted.job_id).state == "succeeded"
    [lesson] = mc.lessons.list(agent_id, task="Book a flight from Lyon to Rome").items
    assert lesson.polarity == "success" and lesson.similarity is not None
    after = mc.lessons.feedback(lesson.id, "failure", note="the card was refused")
    assert after.uses == lesson.uses + 1 and after.failures == lesson.failures + 1
    assert [x.id for x in mc.lessons.iter(agent_id)] == [lesson.id]


def test_errors_carry_the_service_code_message_and_details(mc, server, agent_id):
    with pytest.raises(memcube_client.NotFound) as missing:
        mc.memories.get(uuid.uuid4())
    assert missing.value.code == "not_found" and "not found" in missing.value.message
    assert missing.value.request_id and missing.value.request_id == missing.value.response.headers["x-request-id"]
    with pytest.raises(memcube_client.InvalidInput) as invalid:
        mc.search(agent_id, "x", k=100_000)
    assert invalid.value.status == 422 and "k" in invalid.value.message
    with pytest.raises(memcube_client.PermissionDenied):
        mc.keys.list()
    with MemCube(server, api_key="mc_wrong") as wrong, pytest.raises(memcube_client.AuthenticationError) as denied:
        wrong.memories.list()
    assert denied.value.code == "unauthorized"
    with pytest.raises(ValueError, match="MEMCUBE_API_KEY"):
        MemCube(server, api_key="")


def test_keys_export_and_import(admin_mc, mc, agent_id, other_deployment):
    key = admin_mc.keys.create("sdk-tenant-" + uuid.uuid4().hex[:6], ["read", "write"], name="sdk")
    assert key.token.startswith("mc_") and key.id in [k.id for k in admin_mc.keys.list(tenant=key.tenant)]
    assert admin_mc.keys.revoke(key.id).revoked_at is not None
    with MemCube(mc._http.base_url.__str__(), api_key=key.token) as revoked, \
            pytest.raises(memcube_client.AuthenticationError):
        revoked.memories.list()

    mc.memories.create(agent_id, "Export me", kind="semantic")
    mc.sessions.append("s", agent_id, [{"role": "user", "content": "hello"}])
    exported = mc.export()
    sink = io.BytesIO()
    mc.export(sink, agent_id=agent_id)
    assert sink.getvalue().split(b"\n", 1)[1] == exported.split(b"\n", 1)[1]  # one agent is all there is
    with MemCube(other_deployment.url, api_key=ADMIN_TOKEN) as other_admin:
        tenant_key = other_admin.keys.create("sdk-" + uuid.uuid4().hex[:6], ["read", "write"])
    with MemCube(other_deployment.url, api_key=tenant_key.token) as other:
        result = other.import_(exported, batch_bytes=200)  # one record a batch: every batch all or nothing
        assert result.created["cubes"] == 2 and result.created["sessions"] == 1
        assert other.export() == exported
        assert other.import_(exported).created == {}


def test_health_and_readiness(mc):
    assert mc.health() == {"status": "ok"} and mc.ready()["status"] == "ready"


def test_async_twin_gives_the_same_answers(api, agent_id):
    async def scenario():
        async with AsyncMemCube(str(api.http.base_url), api_key=api.token) as amc:
            created = await amc.memories.create(agent_id, "Allergic to peanuts", kind="semantic")
            await amc.memories.create_batch([{"agent_id": agent_id, "content": f"n{i}"} for i in range(3)])
            listed = [m.id async for m in amc.memories.iter(agent_id=agent_id, limit=1)]
            hits = (await amc.search(agent_id, "food allergy")).hits
            with pytest.raises(memcube_client.NotFound):
                await amc.memories.get(uuid.uuid4())
            exported = await amc.export()
            return created, listed, hits, exported

    created, listed, hits, exported = run_async(scenario)
    assert len(listed) == 4 and created.id in listed and hits[0].id == created.id
    assert exported.count(b'"record":"cube"') == 4


class FlakyFront:
    """A real HTTP front of the real API that answers the first requests with 503 or 429 (and a Retry-After),
    then passes requests through: the retries are the client's, the answers the service's."""

    def __init__(self, upstream: str, failures: list[tuple[int, str | None]]) -> None:
        self.failures = list(failures)
        self.seen: list[float] = []
        front = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _handle(self):
                front.seen.append(time.monotonic())
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                if front.failures:
                    status, after = front.failures.pop(0)
                    self.send_response(status)
                    if after is not None:
                        self.send_header("Retry-After", after)
                    payload = b'{"error": {"code": "unavailable", "message": "try later", "details": null}}'
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                request = urllib.request.Request(upstream + self.path, data=body or None, headers=headers,
                                                 method=self.command)
                try:
                    with urllib.request.urlopen(request) as answer:
                        status, payload = answer.status, answer.read()
                except urllib.error.HTTPError as exc:
                    status, payload = exc.code, exc.read()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_retries_honour_retry_after_then_succeed(api, agent_id):
    front = FlakyFront(str(api.http.base_url).rstrip("/"), [(503, "1"), (429, None)])
    try:
        with MemCube(front.url, api_key=api.token, max_retries=3) as mc:
            created = mc.memories.create(agent_id, "Saved despite a busy front")
        assert len(front.seen) == 3
        assert front.seen[1] - front.seen[0] >= 0.95  # the Retry-After of the 503
        assert mc is not None and created.content == "Saved despite a busy front"
    finally:
        front.close()


def test_retries_give_up_with_the_last_error(api):
    front = FlakyFront(str(api.http.base_url).rstrip("/"), [(503, "0")] * 3)
    try:
        with MemCube(front.url, api_key=api.token, max_retries=1) as mc, \
                pytest.raises(memcube_client.Unavailable) as failed:
            mc.memories.list()
        assert len(front.seen) == 2 and failed.value.message == "try later"
    finally:
        front.close()


def test_connection_errors_are_retried_then_raised():
    with MemCube("http://127.0.0.1:9", api_key="mc_x", max_retries=2) as mc:
        started = time.monotonic()
        with pytest.raises(memcube_client.APIConnectionError):
            mc.health()
    assert time.monotonic() - started >= 0.25 * 2 * 0.5  # two waits of at least half their backoff


def test_retry_policy():
    policy = RetryPolicy(max_retries=3, base_delay=0.5, max_delay=4)
    assert [policy.backoff(n, rand=lambda: 1.0) for n in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert [policy.backoff(n, rand=lambda: 0.0) for n in range(3)] == [0.25, 0.5, 1.0]
    busy = httpx.Response(503, headers={"Retry-After": "7"})
    assert policy.delay_for(0, busy) == 7.0 and policy.delay_for(3, busy) is None
    assert policy.delay_for(0, httpx.Response(500)) is None
    assert RetryPolicy(max_retry_after=5).delay_for(0, busy) is None
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
    date = (now + timedelta(seconds=30)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert retry_after(httpx.Response(429, headers={"Retry-After": date}), now=now) == 30.0
    assert retry_after(httpx.Response(429, headers={"Retry-After": "soon"})) is None


def test_every_route_of_the_api_has_a_method():
    paths = create_app(Settings()).openapi()["paths"]
    served = {(method.upper(), path) for path, ops in paths.items() for method in ops}
    assert served - ROUTES == {("GET", "/metrics")}
    assert ROUTES - served == set()


@pytest.mark.parametrize("name", ["MemCube", "Version", "Hit", "Link", "Appended", "WorkingMemory", "Scratchpad",
                                  "SessionSummary", "CoreMemory", "CoreItem", "CoreBlockWritten", "Context",
                                  "ContextSection", "AgentSummary", "Job", "JobAccepted", "ApiKey", "ApiKeyCreated",
                                  "ImportResult", "Explain", "CubeRef", "Provenance", "PagingMove", "Message",
                                  "TrajectoryView", "TrajectoryRecorded", "LessonView", "Step"])
def test_models_have_the_fields_the_service_sends(name):
    schemas = create_app(Settings()).openapi()["components"]["schemas"]
    schema = schemas.get(name) or schemas[f"{name}-Output"]
    assert set(getattr(models, name).model_fields) == set(schema["properties"]), name


def test_the_audit_trail_pages_through_the_sdk(server):
    with MemCube(server, api_key=ADMIN_TOKEN) as admin:
        key = admin.keys.create(f"t-{uuid.uuid4().hex[:10]}", ["read", "write"], name="audited")
        with MemCube(server, api_key=key.token) as tenant:
            made = [tenant.memories.create("agent", f"audited {n}") for n in range(3)]
        entries = list(admin.audit.iter(tenant=key.tenant, limit=2))
        assert [e.cubes[0].id for e in entries] == [m.id for m in reversed(made)]
        assert {e.key_name for e in entries} == {"audited"} and {e.outcome for e in entries} == {"ok"}
