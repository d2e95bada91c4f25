"""A tenant at a glance: what it holds, how that grew, what its jobs did and what their LLM calls cost."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

import psycopg

from memcube.models import DayCount, DayJobs, Overview, TokenUsage
from memcube.store import discovery as store
from memcube.store import jobs as job_store

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def tenant_overview(conn: psycopg.Connection, *, tenant: str, days: int = 30,
                    now: datetime | None = None) -> Overview:
    """Return the tenant's memories by kind, tier and status, its agents and sessions, memories created and held
    on each of the last `days` UTC days (today included), jobs per day by state, and LLM usage of all its jobs
    and of those of these days."""
    today = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).date()
    first = today - timedelta(days=days - 1)
    since = datetime.combine(first, time(), tzinfo=timezone.utc)
    by_kind: dict[str, int] = {}
    by_tier: dict[str, int] = {}
    by_status: dict[str, int] = {}
    for row in store.tenant_counts(conn, tenant=tenant):
        for value, counts in ((row["kind"], by_kind), (row["tier"], by_tier), (row["status"], by_status)):
            counts[value] = counts.get(value, 0) + row["n"]
    memories = sum(by_kind.values())
    created = {row["day"]: row["n"] for row in store.created_per_day(conn, tenant=tenant, since=since)}
    held = memories - sum(created.values())
    growth = []
    for offset in range(days):
        day: date = first + timedelta(days=offset)
        held += created.get(day, 0)
        growth.append(DayCount(day=day, count=created.get(day, 0), total=held))
    per_day: dict[date, dict[str, int]] = {first + timedelta(days=i): {} for i in range(days)}
    for row in job_store.jobs_per_day(conn, tenant=tenant, since=since):
        per_day.setdefault(row["day"], {})[row["state"]] = row["n"]
    return Overview(
        tenant=tenant, memories=memories, by_kind=by_kind, by_tier=by_tier, by_status=by_status,
        agents=store.count_agents(conn, tenant=tenant), sessions=store.count_sessions(conn, tenant=tenant),
        days=days, growth=growth,
        jobs_per_day=[DayJobs(day=day, by_state=states) for day, states in sorted(per_day.items())],
        tokens_total=TokenUsage(**job_store.token_usage(conn, tenant=tenant, since=EPOCH)),
        tokens_recent=TokenUsage(**job_store.token_usage(conn, tenant=tenant, since=since)),
    )
