"""Consolidation weighs trust: a fact from less trusted origins that contradicts what more trusted ones said is
quarantined for review instead of superseding it (memcube/consolidation/trust.py)."""

import uuid
from datetime import datetime, timezone

import pytest

from memcube import cube, jobs
from memcube.consolidation.ledger import Candidate, Episode, Fact
from memcube.consolidation.run import run_consolidation
from memcube.consolidation.trust import contradiction_reason
from memcube.models import MemCubeCreate, MessageAppend, MessageIn, SearchRequest
from memcube.poisoning import DEFAULT_TRUST
from memcube.search import search
from memcube.session import append_messages

MAR = datetime(2024, 3, 1, 9, 0, tzinfo=timezone.utc)
MAY = datetime(2024, 5, 1, 9, 0, tzinfo=timezone.utc)


@pytest.fixture()
def heuristic(settings):
    return settings.model_copy(update={"consolidate_engine": "heuristic"})


def said_by_user(runtime, settings, tenant, *texts, at=MAR):
    with runtime.pool.connection() as c:
        append_messages(c, runtime.redis, tenant=tenant, actor="test", session_id=f"s-{uuid.uuid4().hex[:6]}",
                        request=MessageAppend(agent_id="a", user_id="u", messages=[
                            MessageIn(role="user", content=t, created_at=at) for t in texts]),
                        embedder=runtime.embedder, settings=settings)


def written(runtime, settings, tenant, text, origin, at=MAY):
    with runtime.pool.connection() as c:
        [row] = cube.create_cubes(c, tenant=tenant, actor="test", embedder=runtime.embedder, settings=settings,
                                  items=[MemCubeCreate(agent_id="a", user_id="u", content=text, occurred_at=at,
                                                       origin=origin)])
    return row


def consolidate(runtime, settings, tenant):
    with runtime.pool.connection() as c:
        job, _ = jobs.enqueue_consolidation(c, tenant=tenant, agent_id="a", user_id="u", trigger="api",
                                            engine="heuristic")
    result = run_consolidation(runtime.pool, job_id=job["id"], embedder=runtime.embedder, settings=settings, llm=None)
    assert result["state"] == "succeeded", result
    return result


def facts(runtime, tenant):
    with runtime.pool.connection() as c:
        rows = c.execute("SELECT * FROM memcubes WHERE tenant = %s AND kind = 'semantic' ORDER BY created_at",
                         (tenant,)).fetchall()
    return {r["content"]: r for r in rows}


def test_a_tool_that_contradicts_what_the_user_said_is_quarantined_not_superseding(runtime, heuristic, tenant):
    said_by_user(runtime, heuristic, tenant, "I live in Berlin.", "Yes, I live in Berlin, near the park.")
    said_by_user(runtime, heuristic, tenant, "As I said, I live in Berlin.")
    assert consolidate(runtime, heuristic, tenant)["counts"]["added"] >= 1
    paris = written(runtime, heuristic, tenant, "I live in Paris.", origin="tool")
    assert paris["status"] == "active"  # nothing in it reads as an instruction: only its claim is weighed
    counts = consolidate(runtime, heuristic, tenant)["counts"]
    assert (counts["quarantined"], counts["superseded"]) == (1, 0)
    found = facts(runtime, tenant)
    berlin, quarantined = found["The user lives in Berlin"], found["The user lives in Paris"]
    assert (berlin["status"], berlin["valid_to"], berlin["superseded_by"]) == ("active", None, None)
    assert quarantined["status"] == "quarantined"
    reason = quarantined["provenance"]["reason"]
    assert str(berlin["id"]) in reason and "more trusted" in reason and "origin tool" in reason
    assert quarantined["provenance"]["derived_from"] == [{"id": str(paris["id"]), "version": 1}]
    with runtime.pool.connection() as c:
        links = cube.list_links(c, tenant=tenant, cube_id=quarantined["id"], limit=50)
        assert any(link["type"] == "contradicts" and link["target_id"] == berlin["id"] for link in links)
        hits = search(c, tenant=tenant, embedder=runtime.embedder, settings=heuristic, stats=runtime.stats,
                      request=SearchRequest(agent_id="a", user_id="u", query="where does the user live?",
                                            kinds=["semantic"])).hits
        assert "The user lives in Berlin" in [h.content for h in hits]
        assert not any("Paris" in h.content for h in hits)
        assert cube.list_cubes(c, tenant=tenant, filters=_filter("quarantined"), limit=10,
                               cursor=None)[0][0]["id"] == quarantined["id"]


def _filter(status):
    from memcube.models import CubeFilter
    return CubeFilter(agent_id="a", status=status, kind="semantic")


def test_the_same_trust_still_supersedes_and_more_trust_overturns_less(runtime, heuristic, tenant):
    written(runtime, heuristic, tenant, "I live in Berlin.", origin="web", at=MAR)
    consolidate(runtime, heuristic, tenant)
    said_by_user(runtime, heuristic, tenant, "I moved to Paris!", at=MAY)
    counts = consolidate(runtime, heuristic, tenant)["counts"]
    assert (counts["superseded"], counts["quarantined"]) == (1, 0)
    found = facts(runtime, tenant)
    assert found["The user lives in Berlin"]["status"] == "superseded"
    assert found["The user lives in Paris"]["status"] == "active"


def test_the_consensus_setting_turns_the_check_off(runtime, heuristic, tenant):
    off = heuristic.model_copy(update={"poison_consensus_min": 0})
    said_by_user(runtime, off, tenant, "I live in Berlin.")
    consolidate(runtime, off, tenant)
    written(runtime, off, tenant, "I live in Paris.", origin="web")
    counts = consolidate(runtime, off, tenant)["counts"]
    assert (counts["superseded"], counts["quarantined"]) == (1, 0)
    assert facts(runtime, tenant)["The user lives in Paris"]["status"] == "active"


def test_contradiction_reason_counts_more_trusted_evidence():
    def episode(origin):
        return Episode(id=uuid.uuid4(), version=1, session_id=None, content="x", speaker=None, role=None, at=MAR,
                       vector=None, active=True, origin=origin)

    users = [episode("user") for _ in range(2)]
    fact = Fact(id=uuid.uuid4(), version=1, content="The user lives in Berlin", vector=None,
                derived_from=[e.ref() for e in users])
    web = episode("web")
    candidate = Candidate(content="The user lives in Paris", evidence=[web])
    origins = {str(e.id): e.origin for e in users + [web]}
    reason = contradiction_reason(candidate, fact, origins=origins, trust=DEFAULT_TRUST, consensus_min=1)
    assert reason is not None and "2 memories" in reason and "user" in reason
    assert contradiction_reason(candidate, fact, origins=origins, trust=DEFAULT_TRUST, consensus_min=3) is None
    assert contradiction_reason(candidate, fact, origins=origins, trust=DEFAULT_TRUST, consensus_min=0) is None
    by_user = Candidate(content="The user lives in Paris", evidence=[episode("user")])
    assert contradiction_reason(by_user, fact, origins={**origins, str(by_user.evidence[0].id): "user"},
                                trust=DEFAULT_TRUST, consensus_min=1) is None
    # A fact written through the API rests on itself: its own origin is weighed.
    api_fact = Fact(id=uuid.uuid4(), version=1, content="The user lives in Berlin", vector=None)
    assert contradiction_reason(candidate, api_fact, origins={**origins, str(api_fact.id): "user"},
                                trust=DEFAULT_TRUST, consensus_min=1) is not None
