"""Lineage through memcube functions: provenance of every version and derived_from links, both directions."""

import uuid

import pytest

from memcube import cube
from memcube.errors import NotFound
from memcube.lineage import get_lineage
from memcube.models import FuseRequest, LinkCreate, MemCubeCreate, MemCubePatch


def make(conn, embedder, settings, tenant, content, agent_id="agent", **extra):
    [row] = cube.create_cubes(conn, tenant=tenant, actor="test", embedder=embedder, settings=settings,
                              items=[MemCubeCreate(agent_id=agent_id, content=content)],
                              extra_provenance=[extra] if extra else None)
    return row


def test_ancestors_and_descendants_a_few_levels_each_way(conn, embedder, settings, tenant):
    e1, e2, e3 = (make(conn, embedder, settings, tenant, f"episode {i}") for i in range(3))
    fused = cube.fuse_cubes(conn, tenant=tenant, actor="test", embedder=embedder, settings=settings,
                            request=FuseRequest(ids=[e1["id"], e2["id"]]))[0]
    # Known only by provenance (no link), as an import or a distillation may record it.
    lesson = make(conn, embedder, settings, tenant, "lesson",
                  derived_from=[{"id": str(fused["id"]), "version": 1}, {"id": str(e3["id"]), "version": 1}])
    down = get_lineage(conn, tenant=tenant, cube_id=e1["id"])
    assert [n.id for n in down.descendants] == [fused["id"]] and down.ancestors == []
    assert down.descendants[0].via == ["link", "provenance"]
    assert [(n.id, n.version, n.content) for n in down.descendants[0].next] == [(lesson["id"], 1, "lesson")]

    # A later change rewrites the current provenance; the lineage lives on in the version that recorded it.
    cube.patch_cube(conn, tenant=tenant, actor="test", cube_id=lesson["id"], patch=MemCubePatch(content="lesson 2"),
                    embedder=embedder, settings=settings)
    up = get_lineage(conn, tenant=tenant, cube_id=lesson["id"])
    assert {(n.id, n.version, tuple(n.via)) for n in up.ancestors} == {(fused["id"], 1, ("provenance",)),
                                                                       (e3["id"], 1, ("provenance",))}
    [via_fused] = [n for n in up.ancestors if n.id == fused["id"]]
    assert {n.id for n in via_fused.next} == {e1["id"], e2["id"]}
    assert all(n.via == ["link", "provenance"] and n.status == "superseded" for n in via_fused.next)
    assert up.descendants == [] and not up.truncated

    shallow = get_lineage(conn, tenant=tenant, cube_id=e1["id"], depth=1)
    assert shallow.descendants[0].next == []
    narrow = get_lineage(conn, tenant=tenant, cube_id=lesson["id"], width=1)
    assert len(narrow.ancestors) == 1 and narrow.truncated


def test_links_of_other_types_and_other_tenants_are_not_lineage(conn, embedder, settings, tenant):
    a = make(conn, embedder, settings, tenant, "a")
    b = make(conn, embedder, settings, tenant, "b")
    cube.link_cubes(conn, tenant=tenant, actor="test", source_id=a["id"],
                    link=LinkCreate(target_id=b["id"], type="related"))
    assert get_lineage(conn, tenant=tenant, cube_id=a["id"]).ancestors == []
    cube.link_cubes(conn, tenant=tenant, actor="test", source_id=a["id"],
                    link=LinkCreate(target_id=b["id"], type="derived_from"))
    assert [n.id for n in get_lineage(conn, tenant=tenant, cube_id=a["id"]).ancestors] == [b["id"]]
    with pytest.raises(NotFound):
        get_lineage(conn, tenant="another-" + uuid.uuid4().hex, cube_id=a["id"])
    ghost = make(conn, embedder, settings, tenant, "names a cube that is not there",
                 derived_from=[{"id": str(uuid.uuid4()), "version": 3}, {"id": "not-a-uuid"}])
    [missing] = get_lineage(conn, tenant=tenant, cube_id=ghost["id"]).ancestors
    assert (missing.found, missing.version, missing.kind) == (False, 3, None)
