"""Erase and forget through the real HTTP app: an erase removes a message everywhere it was copied (derived
cubes, provenance, search documents, the Redis window); a forgotten memory's content is withheld."""

import uuid
from uuid import UUID

from psycopg import sql

from memcube import working
from memcube.consolidation.run import run_consolidation
from tests.conftest import Api


def tables_holding(runtime, needle: str) -> dict[str, int]:
    """Return {table: rows} for every table of the database with a row whose any column holds `needle`."""
    found = {}
    with runtime.pool.connection() as conn:
        names = [r["table_name"] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
            "AND table_type = 'BASE TABLE'").fetchall()]
        for name in names:
            n = conn.execute(sql.SQL("SELECT count(*) AS n FROM {} AS t WHERE row_to_json(t)::text ILIKE %s").format(
                sql.Identifier(name)), (f"%{needle}%",)).fetchone()["n"]
            if n:
                found[name] = n
    return found


def consolidate(api, runtime, settings, agent_id):
    accepted = api.post(f"/v1/agents/{agent_id}/consolidate", json={"engine": "heuristic"})
    assert accepted.status_code == 202, accepted.text
    run_consolidation(runtime.pool, job_id=UUID(accepted.json()["job_id"]), embedder=runtime.embedder,
                      settings=settings, llm=None)


def test_an_erased_message_is_found_nowhere(api, server, admin, agent_id, runtime, settings, redis_client):
    word = f"zq{uuid.uuid4().hex[:10]}"  # a word no other test writes (a place, capitalised below)
    messages = [
        {"role": "user", "content": f"I live in {word.capitalize()}, near the old harbour."},
        {"role": "assistant", "content": "Nice! What do you do there?"},
        {"role": "user", "content": "I work at Globex as a welder."},
        {"role": "assistant", "content": "Welding is skilled work."},
    ]
    appended = api.post("/v1/sessions/chat/messages", json={"agent_id": agent_id, "user_id": "ana",
                                                             "messages": messages})
    assert appended.status_code == 201, appended.text
    said = [m["id"] for m in appended.json()["messages"]]
    consolidate(api, runtime, settings, agent_id)
    derived = api.get("/v1/memories", params={"agent_id": agent_id, "tag": "consolidated"}).json()["items"]
    facts = {d["content"]: d for d in derived if d["kind"] == "semantic"}
    assert any(word in c.lower() for c in facts) and any("Globex" in c for c in facts), facts
    assert any(d["kind"] == "summary" and word in d["content"].lower() for d in derived)
    # Fused twice: the fact's text is in the fused cube, and in a cube fused from that one.
    fact = next(d for c, d in facts.items() if word in c.lower())
    note = api.post("/v1/memories", json={"agent_id": agent_id, "user_id": "ana", "content": "Ana has a boat."})
    other = api.post("/v1/memories", json={"agent_id": agent_id, "user_id": "ana", "content": "Ana rows daily."})
    fused = api.post("/v1/memories/fuse", json={"ids": [fact["id"], note.json()["id"]]}).json()["memory"]
    fused_again = api.post("/v1/memories/fuse", json={"ids": [fused["id"], other.json()["id"]]}).json()["memory"]
    assert word in fused_again["content"].lower()
    # The two turns after the message hold its words in their search documents (look-back).
    with runtime.pool.connection() as conn:
        holding = conn.execute("SELECT id::text FROM memcubes WHERE tenant = %s AND search_tsv::text LIKE %s",
                               (api.tenant, f"%{word}%")).fetchall()
    assert {said[0], said[1], said[2]} <= {r["id"] for r in holding}
    key = working.window_key(api.tenant, agent_id, "chat")
    assert any(word in m.lower() for m in redis_client.zrange(key, 0, -1))
    tenant_admin = admin.post("/v1/admin/keys", json={"tenant": api.tenant, "scopes": ["read", "admin"],
                                                       "name": "dpo"}).json()
    dpo = Api(server, tenant_admin["token"], api.tenant)
    before = tables_holding(runtime, word)
    assert before["memcubes"] >= 5 and before["memcube_versions"] >= 5

    erased = api.delete(f"/v1/memories/{said[0]}", params={"erase": "true", "reason": "right to be forgotten"})

    assert erased.status_code == 200, erased.text
    body = erased.json()
    assert body["id"] == said[0] and body["status"] == "forgotten" and body["content"] == ""
    assert body["provenance"]["reason"] == "right to be forgotten"
    must_go = {said[0], fused["id"], fused_again["id"]} | {d["id"] for d in derived if word in d["content"].lower()}
    assert must_go <= set(body["erased"]) and body["erased"][0] == said[0]
    assert body["windows_scrubbed"] == 1 and body["search_documents_refreshed"] == 2
    # Redis first: checked before any read could rebuild the window.
    window = redis_client.zrange(key, 0, -1)
    assert window and not any(word in m.lower() for m in window)
    assert tables_holding(runtime, word) == {}  # content, data, metadata, provenance, tsv, search_tsv, links ...
    for erased_id in body["erased"]:
        for version in api.get(f"/v1/memories/{erased_id}/history").json()["items"]:
            assert version["content"] == "" and version["provenance"]["source_refs"] == []
    # What it was not copied into stays: the other fact, the other messages, the memory fused with it.
    globex = next(d for c, d in facts.items() if "Globex" in c)
    assert globex["id"] not in body["erased"] and said[2] not in body["erased"]
    assert api.get(f"/v1/memories/{globex['id']}").json()["status"] == "active"
    assert api.get(f"/v1/memories/{note.json()['id']}").json()["content"] == "Ana has a boat."  # superseded
    # Nor served anywhere: search of any status, the working window, context assembly.
    for query in (word, f"where does Ana live? {word} harbour"):
        found = dpo.post("/v1/search", json={"agent_id": agent_id, "user_id": "ana", "query": query, "k": 50,
                                             "statuses": ["active", "superseded", "forgotten"]})
        assert found.status_code == 200 and word not in found.text.lower()
        context = api.post("/v1/context", json={"agent_id": agent_id, "session_id": "chat", "query": query,
                                                "budget": 4000})
        assert context.status_code == 200 and word not in context.text.lower()
        assert "Globex" in context.text  # the rest of the conversation is still there
    assert word not in api.get("/v1/sessions/chat/working").text.lower()
    # Erasing again finishes nothing new and writes no version.
    again = api.delete(f"/v1/memories/{said[0]}", params={"erase": "true"}).json()
    assert again["version"] == body["version"] and set(again["erased"]) == set(body["erased"])
    redis_client.delete(key)
    dpo.http.close()


def test_a_forgotten_memory_is_withheld_unless_an_admin_asks(api, admin, agent_id, server):
    made = api.post("/v1/memories", json={"agent_id": agent_id, "content": "the door code is 4711",
                                          "tags": ["secret"], "metadata": {"code": 4711}}).json()
    api.patch(f"/v1/memories/{made['id']}", json={"content": "the door code is 4712"})
    gone = api.delete(f"/v1/memories/{made['id']}")
    assert gone.status_code == 200
    served = [gone.json(), api.get(f"/v1/memories/{made['id']}").json(),
              api.get(f"/v1/memories/{made['id']}", params={"version": 1}).json(),
              *api.get(f"/v1/memories/{made['id']}/history").json()["items"],
              *api.get("/v1/memories", params={"agent_id": agent_id, "status": "any"}).json()["items"]]
    assert len(served) == 7
    for item in served:
        assert item["id"] == made["id"]
        assert (item["content"], item["tags"], item["metadata"], item["data"]) == ("", [], {}, None)
    assert api.get("/v1/memories", params={"agent_id": agent_id}).json()["items"] == []  # active only by default
    # A key without the admin scope may not ask for it; an admin may.
    refused = api.get(f"/v1/memories/{made['id']}", params={"include_forgotten": "true"})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    assert "admin" in refused.json()["error"]["message"]
    tenant_admin = admin.post("/v1/admin/keys", json={"tenant": api.tenant, "scopes": ["read", "admin"],
                                                       "name": "dpo"}).json()
    dpo = Api(server, tenant_admin["token"], api.tenant)
    asked = {"include_forgotten": "true"}
    assert dpo.get(f"/v1/memories/{made['id']}", params=asked).json()["content"] == "the door code is 4712"
    history = dpo.get(f"/v1/memories/{made['id']}/history", params=asked).json()["items"]
    assert [v["content"] for v in history] == ["the door code is 4711", "the door code is 4712",
                                               "the door code is 4712"]
    listed = dpo.get("/v1/memories", params={"agent_id": agent_id, "status": "forgotten", **asked}).json()
    assert [i["content"] for i in listed["items"]] == ["the door code is 4712"]
    # Search serves forgotten memories to an admin only, too.
    query = {"agent_id": agent_id, "query": "door code", "k": 5, "statuses": ["forgotten"]}
    assert api.post("/v1/search", json=query).status_code == 403
    assert [h["content"] for h in dpo.post("/v1/search", json=query).json()["hits"]] == ["the door code is 4712"]
    dpo.http.close()
