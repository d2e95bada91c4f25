"""Erasure through memcube functions, each test in a rolled-back transaction: the lineage it follows, the
provenance it scrubs, the windows it empties after commit (over HTTP: tests/services/test_erase_api.py)."""

import pytest

from memcube import cube, erasure
from memcube.errors import StaleVersion
from memcube.models import FuseRequest, LinkCreate, MemCubeCreate, MemCubePatch, MessageAppend, MessageIn
from memcube.session import append_messages


def create(conn, embedder, settings, tenant, content, agent_id="agent", **provenance):
    [row] = cube.create_cubes(conn, tenant=tenant, actor="test", embedder=embedder, settings=settings,
                              items=[MemCubeCreate(agent_id=agent_id, content=content)],
                              extra_provenance=[provenance] if provenance else None)
    return row


def test_erase_follows_lineage_known_only_from_an_older_version(conn, embedder, settings, tenant):
    source = create(conn, embedder, settings, tenant, "Ana's badge number is 88123")
    # A copy whose provenance names the source, with no link; a later PATCH writes a provenance without it.
    copy = create(conn, embedder, settings, tenant, "badge 88123 (copied)", reason="copied from 88123",
                  derived_from=[{"id": str(source["id"]), "version": 1}], source_refs=[{"note": "88123"}])
    cube.patch_cube(conn, tenant=tenant, actor="test", cube_id=copy["id"], embedder=embedder, settings=settings,
                    patch=MemCubePatch(importance=0.9, reason="still 88123"))
    # And one derived from the copy by a link only, in another agent of the tenant.
    grandchild = create(conn, embedder, settings, tenant, "someone's badge is 88123", agent_id="other")
    cube.link_cubes(conn, tenant=tenant, actor="test", source_id=grandchild["id"],
                    link=LinkCreate(target_id=copy["id"], type="derived_from", metadata={"why": "88123"}))
    bystander = create(conn, embedder, settings, tenant, "Ana's desk is by the window")

    done = erasure.erase_cube(conn, tenant=tenant, actor="test", cube_id=source["id"], reason="asked by Ana")

    assert done.erased == [source["id"], copy["id"], grandchild["id"]]
    assert done.turns == [] and done.cube["provenance"]["reason"] == "asked by Ana"
    leftovers = conn.execute(
        "SELECT 'version' AS what, row_to_json(v)::text AS row FROM memcube_versions v WHERE tenant = %(t)s "
        "UNION ALL SELECT 'cube', row_to_json(m)::text FROM memcubes m WHERE tenant = %(t)s "
        "UNION ALL SELECT 'link', row_to_json(l)::text FROM memcube_links l WHERE tenant = %(t)s",
        {"t": tenant}).fetchall()
    assert [r for r in leftovers if "88123" in r["row"]] == []
    assert cube.read_cube(conn, tenant=tenant, cube_id=bystander["id"])["status"] == "active"
    copied = cube.history(conn, tenant=tenant, cube_id=copy["id"], include_forgotten=True)
    assert copied[0]["provenance"] == {"source": "api", "actor": "test",
                                       "derived_from": [{"id": str(source["id"]), "version": 1}]}
    assert copied[-1]["provenance"] == {"source": "api", "actor": "test", "erasure": str(source["id"]),
                                        "reason": f"erased with {source['id']}, derived from it"}
    # Again: nothing left to do, no new version.
    again = erasure.erase_cube(conn, tenant=tenant, actor="test", cube_id=source["id"])
    assert again.erased == done.erased and again.cube["version"] == done.cube["version"]
    assert len(cube.history(conn, tenant=tenant, cube_id=copy["id"])) == len(copied)
    with pytest.raises(StaleVersion):
        erasure.erase_cube(conn, tenant=tenant, actor="test", cube_id=source["id"], if_match=1)


def test_erase_of_a_fused_source_takes_the_fused_cube_and_leaves_the_other_source(conn, embedder, settings, tenant):
    a = create(conn, embedder, settings, tenant, "the vault opens with 5521")
    b = create(conn, embedder, settings, tenant, "the vault is in the basement")
    fused, _ = cube.fuse_cubes(conn, tenant=tenant, actor="test", embedder=embedder, settings=settings,
                               request=FuseRequest(ids=[a["id"], b["id"]]))
    done = erasure.erase_cube(conn, tenant=tenant, actor="test", cube_id=a["id"])
    assert done.erased == [a["id"], fused["id"]]
    kept = cube.read_cube(conn, tenant=tenant, cube_id=b["id"])
    assert (kept["status"], kept["content"]) == ("superseded", "the vault is in the basement")


def test_windows_are_scrubbed_after_commit(conn, redis_client, embedder, settings, tenant):
    from memcube import working

    appended = append_messages(conn, redis_client, tenant=tenant, actor="test", session_id="s", embedder=embedder,
                               settings=settings, request=MessageAppend(agent_id="agent", messages=[
                                   MessageIn(role="user", content="my PIN is 0042"),
                                   MessageIn(role="assistant", content="noted")]))
    key = working.window_key(tenant, "agent", "s")
    assert len(redis_client.zrange(key, 0, -1)) == 2
    done = erasure.erase_cube(conn, tenant=tenant, actor="test", cube_id=appended.messages[0].id)
    assert done.turns == [{"agent_id": "agent", "session_id": "s", "turn": 0}]
    assert len(redis_client.zrange(key, 0, -1)) == 2  # not before the commit (the caller's)
    assert erasure.scrub_windows(redis_client, done) == 1 == done.windows_scrubbed
    assert [m for m in redis_client.zrange(key, 0, -1) if "0042" in m] == []
    assert erasure.scrub_windows(redis_client, done) == 0  # nothing left to remove
