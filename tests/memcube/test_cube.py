"""Cube operations through memcube functions, each test in a rolled-back transaction."""

import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from memcube import cube
from memcube.errors import Conflict, InvalidInput, NotFound, StaleVersion, TooLarge
from memcube.models import FuseRequest, LinkCreate, MemCubeCreate, MemCubePatch


@pytest.fixture()
def make(conn, embedder, settings):
    tenant = f"t-{uuid.uuid4().hex[:8]}"

    def _make(content="a memory", agent_id="agent", **fields):
        [row] = cube.create_cubes(conn, tenant=tenant, actor="test", embedder=embedder, settings=settings,
                                  items=[MemCubeCreate(agent_id=agent_id, content=content, **fields)])
        return row

    _make.tenant = tenant
    return _make


def patch(conn, embedder, settings, tenant, cube_id, if_match=None, **fields):
    return cube.patch_cube(conn, tenant=tenant, actor="test", cube_id=cube_id, patch=MemCubePatch(**fields),
                           embedder=embedder, settings=settings, if_match=if_match)


def test_every_change_is_a_version_readable_by_number_and_as_of(runtime, embedder, settings):
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    with runtime.pool.connection() as c:
        [first] = cube.create_cubes(c, tenant=tenant, actor="t", embedder=embedder, settings=settings,
                                    items=[MemCubeCreate(agent_id="a", content="I live in Lisbon")])
    with runtime.pool.connection() as c:
        second = patch(c, embedder, settings, tenant, first["id"], content="I live in Porto", reason="moved")
    assert second["version"] == 2 and second["content"] == "I live in Porto"
    assert second["provenance"]["reason"] == "moved"
    with runtime.pool.connection() as c:
        v1 = cube.read_cube(c, tenant=tenant, cube_id=first["id"], version=1)
        assert v1["content"] == "I live in Lisbon"
        before = second["updated_at"] - timedelta(microseconds=1)
        assert cube.read_cube(c, tenant=tenant, cube_id=first["id"], as_of=before)["content"] == "I live in Lisbon"
        at = cube.read_cube(c, tenant=tenant, cube_id=first["id"], as_of=second["updated_at"])
        assert at["content"] == "I live in Porto"
        with pytest.raises(NotFound, match="did not exist"):
            cube.read_cube(c, tenant=tenant, cube_id=first["id"], as_of=first["created_at"] - timedelta(seconds=1))
        with pytest.raises(NotFound, match="no version 3"):
            cube.read_cube(c, tenant=tenant, cube_id=first["id"], version=3)
        history = cube.history(c, tenant=tenant, cube_id=first["id"])
    assert [h["version"] for h in history] == [1, 2]
    assert [h["content"] for h in history] == ["I live in Lisbon", "I live in Porto"]
    assert [h["recorded_at"] for h in history] == [first["created_at"], second["updated_at"]]


def test_a_change_updates_the_vector_so_search_sees_new_content(conn, embedder, settings, make):
    row = make("the cat sleeps")
    patch(conn, embedder, settings, make.tenant, row["id"], content="quarterly revenue grew")
    stored = conn.execute("SELECT embedding FROM memcubes WHERE id = %s", (row["id"],)).fetchone()["embedding"]
    expected = embedder.embed(["quarterly revenue grew"])[0]
    assert abs(float(sum(a * b for a, b in zip(stored.to_list(), expected))) - 1.0) < 1e-4


def test_stale_if_match_is_refused_and_changes_nothing(conn, embedder, settings, make):
    row = make("v1")
    patch(conn, embedder, settings, make.tenant, row["id"], content="v2", if_match=1)
    with pytest.raises(StaleVersion) as info:
        patch(conn, embedder, settings, make.tenant, row["id"], content="v3", if_match=1)
    assert info.value.details == {"current_version": 2}
    assert cube.read_cube(conn, tenant=make.tenant, cube_id=row["id"])["content"] == "v2"


def test_empty_patch_and_bad_validity_are_refused(conn, embedder, settings, make):
    row = make("x", valid_from=datetime(2024, 1, 1, tzinfo=timezone.utc))
    with pytest.raises(InvalidInput, match="changes nothing"):
        patch(conn, embedder, settings, make.tenant, row["id"])
    with pytest.raises(InvalidInput, match="valid_to"):
        patch(conn, embedder, settings, make.tenant, row["id"], valid_to=datetime(2023, 1, 1, tzinfo=timezone.utc))


def test_forget_writes_a_tombstone_and_keeps_history(conn, embedder, settings, make):
    row = make("temporary note")
    gone = cube.forget_cube(conn, tenant=make.tenant, actor="test", cube_id=row["id"], reason="user asked")
    assert gone["status"] == "forgotten" and gone["version"] == 2
    again = cube.forget_cube(conn, tenant=make.tenant, actor="test", cube_id=row["id"])
    assert again["version"] == 2
    # The history keeps the content, served only when asked for (an admin, over the API): forget is a soft delete.
    assert cube.read_cube(conn, tenant=make.tenant, cube_id=row["id"], version=1)["content"] == ""
    assert cube.read_cube(conn, tenant=make.tenant, cube_id=row["id"], version=1,
                          include_forgotten=True)["content"] == "temporary note"
    with pytest.raises(Conflict):
        patch(conn, embedder, settings, make.tenant, row["id"], content="back")


def test_erase_leaves_no_content_in_any_version_row(conn, embedder, settings, make):
    row = make("my passport number is X1234567", tags=["secret"], metadata={"pii": "X1234567"},
               data={"number": "X1234567"})
    patch(conn, embedder, settings, make.tenant, row["id"], content="my passport number is Y7654321")
    erased = cube.forget_cube(conn, tenant=make.tenant, actor="test", cube_id=row["id"], erase=True)
    assert erased["status"] == "forgotten" and erased["content"] == "" and erased["version"] == 3
    rows = conn.execute("SELECT * FROM memcube_versions WHERE cube_id = %s", (row["id"],)).fetchall()
    assert len(rows) == 3
    for version in rows:
        text = repr({k: v for k, v in version.items() if k != "provenance"})
        assert "X1234567" not in text and "Y7654321" not in text and "passport" not in text
    current = conn.execute("SELECT content, embedding, tsv::text AS tsv, data, metadata, tags FROM memcubes "
                           "WHERE id = %s", (row["id"],)).fetchone()
    assert current == {"content": "", "embedding": None, "tsv": "", "data": None, "metadata": {}, "tags": []}


def test_batch_is_atomic_when_one_item_is_invalid(conn, embedder, settings, make):
    items = [MemCubeCreate(agent_id="a", content=f"item {i}") for i in range(3)]
    items.append(MemCubeCreate(agent_id="a", content="bad vector", embedding=[0.1] * 7))
    with pytest.raises(InvalidInput, match=r"items\[3\]: embedding has 7 dimensions"):
        cube.create_cubes(conn, tenant=make.tenant, actor="t", items=items, embedder=embedder, settings=settings)
    n = conn.execute("SELECT count(*) AS n FROM memcubes WHERE tenant = %s", (make.tenant,)).fetchone()["n"]
    assert n == 0


def test_limits_name_themselves(conn, embedder, settings, make):
    too_long = "x" * (settings.max_content_chars + 1)
    with pytest.raises(TooLarge, match="MEMCUBE_MAX_CONTENT_CHARS"):
        make(too_long)
    many = [MemCubeCreate(agent_id="a", content="x")] * (settings.max_batch_items + 1)
    with pytest.raises(TooLarge, match="MEMCUBE_MAX_BATCH_ITEMS"):
        cube.create_cubes(conn, tenant=make.tenant, actor="t", items=many, embedder=embedder, settings=settings)


def test_client_supplied_embedding_is_stored_normalized(conn, embedder, settings, make):
    vector = [0.0] * embedder.dim
    vector[3] = 5.0
    row = make("imported", embedding=vector)
    stored = conn.execute("SELECT embedding FROM memcubes WHERE id = %s", (row["id"],)).fetchone()["embedding"]
    assert stored.to_list()[3] == pytest.approx(1.0)


def test_fuse_supersedes_sources_and_keeps_lineage(conn, embedder, settings, make):
    a, b = make("likes green tea", importance=0.4), make("drinks green tea daily", importance=0.9)
    fused, superseded = cube.fuse_cubes(conn, tenant=make.tenant, actor="t", embedder=embedder, settings=settings,
                                        request=FuseRequest(ids=[a["id"], b["id"]], content="drinks green tea"))
    assert fused["importance"] == pytest.approx(0.9)
    assert {(d["id"], d["version"]) for d in fused["provenance"]["derived_from"]} == {(str(a["id"]), 1), (str(b["id"]), 1)}
    assert {s["status"] for s in superseded} == {"superseded"}
    assert {s["superseded_by"] for s in superseded} == {fused["id"]}
    links = cube.list_links(conn, tenant=make.tenant, cube_id=fused["id"], limit=10)
    assert {(link["type"], link["target_id"]) for link in links} == {("derived_from", a["id"]), ("derived_from", b["id"])}
    with pytest.raises(Conflict, match="only active"):
        cube.fuse_cubes(conn, tenant=make.tenant, actor="t", embedder=embedder, settings=settings,
                        request=FuseRequest(ids=[a["id"], fused["id"]]))


def test_fuse_refuses_mixed_scopes(conn, embedder, settings, make):
    a, b = make("x", agent_id="one"), make("y", agent_id="two")
    with pytest.raises(InvalidInput, match="share agent_id"):
        cube.fuse_cubes(conn, tenant=make.tenant, actor="t", embedder=embedder, settings=settings,
                        request=FuseRequest(ids=[a["id"], b["id"]]))


def test_links_are_idempotent_and_refuse_self_links(conn, make):
    a, b = make("a"), make("b")
    first = cube.link_cubes(conn, tenant=make.tenant, actor="t", source_id=a["id"],
                            link=LinkCreate(target_id=b["id"], type="supports"))
    again = cube.link_cubes(conn, tenant=make.tenant, actor="t", source_id=a["id"],
                            link=LinkCreate(target_id=b["id"], type="supports"))
    assert first["id"] == again["id"]
    with pytest.raises(InvalidInput):
        cube.link_cubes(conn, tenant=make.tenant, actor="t", source_id=a["id"], link=LinkCreate(target_id=a["id"]))
    with pytest.raises(NotFound):
        cube.link_cubes(conn, tenant="other", actor="t", source_id=a["id"], link=LinkCreate(target_id=b["id"]))


def test_concurrent_changes_with_the_same_if_match_let_exactly_one_win(runtime, embedder, settings):
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    with runtime.pool.connection() as c:
        [row] = cube.create_cubes(c, tenant=tenant, actor="t", embedder=embedder, settings=settings,
                                  items=[MemCubeCreate(agent_id="a", content="start")])
    outcomes = []
    barrier = threading.Barrier(6)

    def attempt(i):
        barrier.wait()
        try:
            with runtime.pool.connection() as c:
                patch(c, embedder, settings, tenant, row["id"], if_match=1, content=f"writer {i}")
                time.sleep(0.05)  # hold the row lock so the others really queue behind it
            outcomes.append("won")
        except StaleVersion:
            outcomes.append("stale")

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["stale"] * 5 + ["won"]
    with runtime.pool.connection() as c:
        assert [h["version"] for h in cube.history(c, tenant=tenant, cube_id=row["id"])] == [1, 2]
