"""A tenant's overview through memcube functions: counts, growth per day, jobs per day, LLM usage."""

from datetime import date, datetime, timedelta, timezone

from memcube import cube, jobs
from memcube.models import MemCubeCreate
from memcube.overview import tenant_overview
from memcube.store import jobs as job_store


def test_counts_growth_jobs_and_tokens(conn, embedder, settings, tenant):
    items = [MemCubeCreate(agent_id=f"a{i % 2}", content=f"memory {i}", kind="semantic" if i < 3 else "episodic")
             for i in range(7)]
    rows = cube.create_cubes(conn, tenant=tenant, actor="t", items=items, embedder=embedder, settings=settings)
    cube.forget_cube(conn, tenant=tenant, actor="t", cube_id=rows[0]["id"])
    job, _ = jobs.enqueue_consolidation(conn, tenant=tenant, agent_id="a0", user_id=None, trigger="api")
    job_store.add_progress(conn, job_id=job["id"], counts={}, tokens_in=1200, tokens_out=80, llm_calls=3)
    jobs.enqueue_consolidation(conn, tenant=tenant, agent_id="a1", user_id=None, trigger="api")
    cube.create_cubes(conn, tenant="someone-else", actor="t", items=items[:2], embedder=embedder, settings=settings)

    now = datetime.now(timezone.utc)
    seen = tenant_overview(conn, tenant=tenant, days=5, now=now)
    assert (seen.memories, seen.agents, seen.sessions) == (7, 2, 0)
    assert seen.by_kind == {"semantic": 3, "episodic": 4} and seen.by_tier == {"archival": 7}
    assert seen.by_status == {"active": 6, "forgotten": 1}
    today = now.date()
    assert [d.day for d in seen.growth] == [today - timedelta(days=4 - i) for i in range(5)]
    assert [(d.count, d.total) for d in seen.growth] == [(0, 0)] * 4 + [(7, 7)]
    assert seen.jobs_per_day[-1].by_state == {"queued": 2} and all(d.by_state == {} for d in seen.jobs_per_day[:-1])
    assert (seen.tokens_total.jobs, seen.tokens_total.tokens_in, seen.tokens_total.tokens_out,
            seen.tokens_total.llm_calls) == (2, 1200, 80, 3)
    assert seen.tokens_recent == seen.tokens_total

    later = tenant_overview(conn, tenant=tenant, days=3, now=now + timedelta(days=10))
    assert [(d.count, d.total) for d in later.growth] == [(0, 7)] * 3
    assert later.tokens_recent.jobs == 0 and later.tokens_total.tokens_in == 1200
    earlier = tenant_overview(conn, tenant=tenant, days=2, now=now - timedelta(days=1))
    assert [(d.count, d.total) for d in earlier.growth] == [(0, 0), (0, 0)]  # all of them came later


def test_an_empty_tenant(conn):
    seen = tenant_overview(conn, tenant="nobody-here", days=30, now=datetime(2025, 3, 31, tzinfo=timezone.utc))
    assert (seen.memories, seen.agents, seen.by_kind, seen.tokens_total.jobs) == (0, 0, {}, 0)
    assert len(seen.growth) == 30 and seen.growth[0].day == date(2025, 3, 2)
