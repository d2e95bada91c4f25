"""The dashboard over plain HTTP: sign-in, cookies, CSRF, tenants, escaping, and the changes it makes."""

import html
import re
import time
import uuid

from markupsafe import escape

from memcube import dashboard_session
from tests.conftest import ADMIN_TOKEN, new_tenant_api
from tests.services.dashboard.conftest import COOKIE_NAME, Dashboard


def create(api, content, **fields):
    response = api.post("/v1/memories", json={"agent_id": fields.pop("agent_id", "agent"), "content": content,
                                              **fields})
    assert response.status_code == 201, response.text
    return response.json()


def goes_to_sign_in(response):
    return response.status_code == 303 and response.headers["location"].startswith("/dashboard/signin")


def test_a_wrong_token_shows_the_sign_in_page_with_an_error_and_sets_no_cookie(anonymous, server, admin):
    for token in ("mc_wrong", "", "x" * 200):
        response = anonymous.sign_in(token)
        assert response.status_code == 401 and "not valid" in response.text
        assert "set-cookie" not in response.headers
    reader = new_tenant_api(server, admin, scopes=("read", "write"))
    response = anonymous.sign_in(reader.token)
    assert response.status_code == 403 and "lacks the admin scope" in response.text
    assert "set-cookie" not in response.headers
    assert goes_to_sign_in(anonymous.get("/dashboard"))
    reader.http.close()


def test_the_session_cookie_is_signed_httponly_strict_and_expires(anonymous, tenant_admin):
    response = anonymous.sign_in(tenant_admin.token)
    assert response.status_code == 303 and response.headers["location"] == "/dashboard"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE_NAME}=")
    for attribute in ("HttpOnly", "SameSite=strict", "Max-Age=28800", "Path=/dashboard"):
        assert attribute.lower() in cookie.lower(), cookie
    value = anonymous.cookies[COOKIE_NAME]
    session_id, _, signature = value.partition(".")
    assert len(session_id) >= 40 and len(signature) >= 40
    assert tenant_admin.token not in cookie
    page = anonymous.get("/dashboard")
    assert page.status_code == 200 and tenant_admin.tenant in page.text


def test_a_forged_or_expired_cookie_goes_back_to_sign_in(server, tenant_admin, runtime, settings):
    signed_in = Dashboard(server)
    signed_in.sign_in(tenant_admin.token)
    good = signed_in.cookies[COOKIE_NAME]
    session_id, _, signature = good.partition(".")
    forged = [f"{session_id}.{signature[:-2]}AA", f"{session_id[:-2]}AA.{signature}", session_id, "", "a.b.c",
              f"{uuid.uuid4().hex}.{signature}"]
    key = dashboard_session.signing_key(settings)
    with runtime.pool.connection() as conn:
        expired, _ = dashboard_session.sign_in(conn, token=tenant_admin.token, settings=settings, key=key,
                                               lifetime_seconds=0.5)
    time.sleep(0.6)
    for cookie in forged + [expired]:
        client = Dashboard(server)
        client.cookies.set(COOKIE_NAME, cookie, domain="127.0.0.1", path="/dashboard")
        response = client.get("/dashboard/memories")
        assert goes_to_sign_in(response), cookie
        assert response.headers["location"] == "/dashboard/signin?next=%2Fdashboard%2Fmemories"
        client.http.close()
    assert signed_in.get("/dashboard").status_code == 200
    signed_in.http.close()


def test_signing_out_ends_the_session_even_for_a_copied_cookie(dashboard, server):
    copied = dashboard.cookies[COOKIE_NAME]
    response = dashboard.post("/dashboard/signout", data={"csrf": dashboard.csrf()})
    assert response.status_code == 303 and response.headers["location"] == "/dashboard/signin?signed_out=true"
    assert 'memcube_dashboard=""' in response.headers["set-cookie"] or "Max-Age=0" in response.headers["set-cookie"]
    replay = Dashboard(server)
    replay.cookies.set(COOKIE_NAME, copied, domain="127.0.0.1", path="/dashboard")
    assert goes_to_sign_in(replay.get("/dashboard"))
    replay.http.close()


def test_revoking_the_key_or_changing_the_admin_token_ends_the_session(dashboard, tenant_admin, admin, server,
                                                                        runtime, settings):
    keys = admin.get("/v1/admin/keys", params={"tenant": tenant_admin.tenant}).json()["items"]
    assert admin.delete(f"/v1/admin/keys/{keys[0]['id']}").status_code == 200
    assert goes_to_sign_in(dashboard.get("/dashboard"))

    other_token = settings.model_copy(update={"admin_token": "another-admin-token"})
    key = dashboard_session.signing_key(settings)
    with runtime.pool.connection() as conn:
        cookie, _ = dashboard_session.sign_in(conn, token=ADMIN_TOKEN, settings=settings, key=key)
        assert dashboard_session.open_session(conn, cookie=cookie, settings=settings, key=key) is not None
        assert dashboard_session.open_session(conn, cookie=cookie, settings=other_token, key=key) is None


def test_a_change_without_a_valid_csrf_token_is_refused_and_changes_nothing(dashboard, tenant_admin):
    cube = create(tenant_admin, "keep me")
    url = f"/dashboard/memories/{cube['id']}/action"
    form = {"action": "erase", "version": "1"}
    for csrf in (None, "", "forged-token", dashboard.csrf()[:-1]):
        data = form if csrf is None else {**form, "csrf": csrf}
        response = dashboard.post(url, data=data)
        assert response.status_code == 403 and "CSRF" in response.text
    cross_site = dashboard.post(url, data={**form, "csrf": dashboard.csrf()}, headers={"Origin": "https://evil.example"})
    assert cross_site.status_code == 403 and "another site" in cross_site.text
    for path, data in (("/dashboard/keys", {"scopes": "read"}), ("/dashboard/jobs/run", {"kind": "consolidate",
                                                                                          "agent_id": "agent"}),
                       ("/dashboard/signout", {})):
        assert dashboard.post(path, data=data).status_code == 403
    current = tenant_admin.get(f"/v1/memories/{cube['id']}").json()
    assert (current["version"], current["status"], current["content"]) == (1, "active", "keep me")
    assert len(tenant_admin.get("/v1/admin/keys").json()["items"]) == 1
    assert tenant_admin.get("/v1/jobs").json()["items"] == []
    assert dashboard.get("/dashboard").status_code == 200  # still signed in


def test_a_tenant_admin_cannot_reach_another_tenants_data(dashboard, server, admin):
    other = new_tenant_api(server, admin)
    theirs = create(other, "their secret", agent_id="their-agent", session_id="their-session")
    other.post("/v1/sessions/their-chat/messages", json={"agent_id": "their-agent", "messages": [
        {"role": "user", "content": "hidden"}]})
    csrf = dashboard.csrf()
    for path in (f"/dashboard/memories/{theirs['id']}", f"/dashboard/memories/{theirs['id']}/edit",
                 f"/dashboard/memories/{theirs['id']}/confirm?action=erase", "/dashboard/agent?agent_id=their-agent",
                 "/dashboard/session?session_id=their-chat"):
        response = dashboard.get(path)
        assert response.status_code == 404, path
        assert "their secret" not in response.text
    erase = dashboard.post(f"/dashboard/memories/{theirs['id']}/action",
                           data={"action": "erase", "version": "1", "csrf": csrf})
    assert erase.status_code == 404
    listing = dashboard.get("/dashboard/memories", params={"agent_id": "their-agent", "status": "any"})
    assert listing.status_code == 200 and "their secret" not in listing.text
    assert "their-agent" not in dashboard.get("/dashboard/agents").text
    assert dashboard.get("/dashboard/tenants").status_code == 403
    assert dashboard.post("/dashboard/tenant", data={"tenant": other.tenant, "csrf": csrf}).status_code == 403
    assert other.get(f"/v1/memories/{theirs['id']}").json()["content"] == "their secret"
    other.http.close()


def test_the_admin_token_picks_a_tenant_and_sees_it(anonymous, server, admin):
    other = new_tenant_api(server, admin)
    cube = create(other, "visible to the bootstrap admin")
    response = anonymous.sign_in(ADMIN_TOKEN)
    assert response.headers["location"] == "/dashboard/tenants"
    picker = anonymous.get("/dashboard/tenants")
    assert picker.status_code == 200 and other.tenant in picker.text
    assert anonymous.get(f"/dashboard/memories/{cube['id']}").status_code == 404  # acting in `default`
    switched = anonymous.post("/dashboard/tenant", data={"tenant": other.tenant, "csrf": anonymous.csrf()})
    assert switched.status_code == 303
    page = anonymous.get(f"/dashboard/memories/{cube['id']}")
    assert page.status_code == 200 and "visible to the bootstrap admin" in page.text
    bad = anonymous.post("/dashboard/tenant", data={"tenant": "a\x00b", "csrf": anonymous.csrf()})
    assert bad.status_code == 422
    other.http.close()


def test_every_page_escapes_stored_content(dashboard, tenant_admin):
    evil = '<script>alert("pwned")</script><img src=x onerror=alert(1)>'
    cube = create(tenant_admin, evil, agent_id=evil, user_id=evil, session_id=evil, tags=[evil],
                  metadata={evil: evil}, data={"note": evil}, kind="procedural")
    tenant_admin.post("/v1/sessions/s-evil/messages", json={"agent_id": evil, "messages": [
        {"role": "user", "content": evil, "name": "x"}]})
    tenant_admin.put("/v1/sessions/s-evil/scratchpad", json={"content": evil})
    tenant_admin.patch(f"/v1/memories/{cube['id']}", json={"content": evil + " changed", "reason": evil})
    tenant_admin.post("/v1/agents/safe/consolidate")
    pages = [("/dashboard", {}), ("/dashboard/agents", {}), ("/dashboard/agent", {"agent_id": evil}),
             ("/dashboard/agent", {"agent_id": evil, "user_id": evil}),
             ("/dashboard/session", {"session_id": "s-evil"}),
             ("/dashboard/memories", {"agent_id": evil, "status": "any"}),
             ("/dashboard/memories", {"agent_id": evil, "q": "pwned"}), (f"/dashboard/memories/{cube['id']}", {}),
             (f"/dashboard/memories/{cube['id']}/edit", {}),
             (f"/dashboard/memories/{cube['id']}/confirm", {"action": "forget"}), ("/dashboard/jobs", {}),
             ("/dashboard/keys", {})]
    for path, params in pages:
        response = dashboard.get(path, params=params)
        assert response.status_code == 200, (path, response.text[:500])
        assert "<script" not in response.text and "<img" not in response.text, path
        assert response.headers["content-security-policy"].startswith("default-src 'none'")
    body = dashboard.get(f"/dashboard/memories/{cube['id']}").text
    assert str(escape(evil)) in body


def test_changes_from_the_dashboard_are_versions_whose_actor_is_the_dashboard_user(dashboard, tenant_admin):
    cube = create(tenant_admin, "The meeting is on Monday.\nBring the slides.", tags=["work"])
    key_id = tenant_admin.get("/v1/admin/keys").json()["items"][0]["id"]
    actor = f"dashboard:key:{key_id}"
    base = f"/dashboard/memories/{cube['id']}"

    review = dashboard.post(f"{base}/edit/review", data={
        "csrf": dashboard.csrf(), "version": "1", "content": "The meeting is on Tuesday.\r\nBring the slides.",
        "tags": "work, urgent", "importance": "0.9", "confidence": "1", "reason": "moved"})
    assert review.status_code == 200
    assert "<del>Monday</del><ins>Tuesday</ins>" in review.text.replace("\n", "")
    assert tenant_admin.get(f"/v1/memories/{cube['id']}").json()["version"] == 1  # reviewing changes nothing
    hidden = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', review.text))
    saved = dashboard.post(f"{base}/edit", data={k: html.unescape(v) for k, v in hidden.items()})
    assert saved.status_code == 303 and saved.headers["location"] == f"{base}?done=edited"

    for action, version in (("to-core", 2), ("quarantine", 3), ("reactivate", 4), ("to-archival", 5)):
        confirm = dashboard.get(f"{base}/confirm", params={"action": action})
        assert confirm.status_code == 200 and f"version {version + 1}" in confirm.text
        done = dashboard.post(f"{base}/action", data={"csrf": dashboard.csrf(), "action": action,
                                                      "version": str(version), "reason": f"via {action}"})
        assert done.status_code == 303, done.text
    stale = dashboard.post(f"{base}/action", data={"csrf": dashboard.csrf(), "action": "forget", "version": "3"})
    assert stale.status_code == 412 and "version 6" in stale.text
    assert dashboard.post(f"{base}/action", data={"csrf": dashboard.csrf(), "action": "forget",
                                                  "version": "6"}).status_code == 303

    # Forgotten: its content is served to an admin who asks for it.
    history = tenant_admin.get(f"/v1/memories/{cube['id']}/history",
                               params={"include_forgotten": "true"}).json()["items"]
    assert [h["provenance"]["actor"] for h in history] == ["key:" + key_id] + [actor] * 6
    assert [(h["tier"], h["status"]) for h in history[1:]] == [
        ("archival", "active"), ("core", "active"), ("core", "quarantined"), ("core", "active"),
        ("archival", "active"), ("archival", "forgotten")]
    assert history[1]["content"] == "The meeting is on Tuesday.\nBring the slides."
    assert history[1]["tags"] == ["work", "urgent"] and abs(history[1]["importance"] - 0.9) < 1e-6
    assert history[1]["provenance"]["reason"] == "moved" and history[3]["provenance"]["reason"] == "via quarantine"
    # Each dashboard change is in the audit trail under the signed-in user, with the version it wrote.
    trail = tenant_admin.get("/v1/admin/audit", params={"cube_id": cube["id"]}).json()["items"]
    assert [[v["version"] for v in e["cubes"]] for e in trail] == [[7], [6], [5], [4], [3], [2], [1]]
    assert {e["actor"] for e in trail[:-1]} == {actor} and trail[-1]["actor"] == "key:" + key_id
    assert trail[0]["route"] == "/dashboard/memories/{cube_id}/action" and trail[0]["outcome"] == "ok"
    refusals = tenant_admin.get("/v1/admin/audit", params={"outcome": "refused"}).json()["items"]
    assert [(e["status"], e["actor"]) for e in refusals] == [(412, actor)]
    page = dashboard.get(base)
    assert page.status_code == 200 and "forgotten" in page.text and actor in page.text
    refused = dashboard.post(f"{base}/edit/review", data={"csrf": dashboard.csrf(), "version": "7", "content": "x"})
    assert refused.status_code == 409 and "forgotten" in refused.text


def test_a_core_block_is_edited_through_its_own_path(dashboard, tenant_admin):
    block = tenant_admin.put("/v1/agents/bot/core/persona", json={"content": "You are calm."}).json()["block"]
    base = f"/dashboard/memories/{block['id']}"
    assert "Move to" not in dashboard.get(base).text
    saved = dashboard.post(f"{base}/edit", data={"csrf": dashboard.csrf(), "version": "1",
                                                 "content": "You are calm and brief."})
    assert saved.status_code == 303
    current = tenant_admin.get("/v1/agents/bot/core/persona").json()
    assert current["content"] == "You are calm and brief." and current["version"] == 2
    too_big = dashboard.post(f"{base}/edit", data={"csrf": dashboard.csrf(), "version": "2",
                                                   "content": "word " * 2000})
    assert too_big.status_code == 413 and "MEMCUBE_CORE_BLOCK_MAX_TOKENS" in too_big.text
    to_core = dashboard.post(f"{base}/action", data={"csrf": dashboard.csrf(), "action": "to-archival",
                                                     "version": "2"})
    assert to_core.status_code == 409 and "core block" in to_core.text


def test_bad_input_gets_an_error_page(dashboard, tenant_admin):
    cube = create(tenant_admin, "x")
    for path, status in ((f"/dashboard/memories/{uuid.uuid4()}", 404), ("/dashboard/memories/not-a-uuid", 422),
                         (f"/dashboard/memories/{cube['id']}/confirm?action=explode", 422),
                         ("/dashboard/memories?kind=nonsense", 422), ("/dashboard/memories?k=999", 422),
                         ("/dashboard/memories?cursor=garbage", 422), ("/dashboard/jobs?state=exploded", 422),
                         ("/dashboard/agent?agent_id=nobody", 404), ("/dashboard/session?session_id=none", 404),
                         ("/dashboard/jobs/" + str(uuid.uuid4()), 404), ("/dashboard/agent", 422),
                         ("/dashboard/agent?agent_id=a&user_id=a%00b", 422)):
        response = dashboard.get(path)
        assert response.status_code == status, (path, response.text[:300])
        assert response.headers["content-type"].startswith("text/html") and 'class="error"' in response.text
    unknown = dashboard.get("/dashboard/no-such-page")
    assert unknown.status_code == 404 and unknown.headers["content-type"].startswith("text/html")
    style = dashboard.get("/dashboard/static/dashboard.css")
    assert style.status_code == 200 and style.headers["content-type"].startswith("text/css")
    search_without_agent = dashboard.get("/dashboard/memories", params={"q": "x"})
    assert search_without_agent.status_code == 200 and "pick an agent" in search_without_agent.text


def test_an_erase_from_the_dashboard_takes_what_was_derived_and_leaves_the_window(dashboard, tenant_admin,
                                                                                  redis_client):
    from memcube import working

    said = tenant_admin.post("/v1/sessions/s1/messages", json={"agent_id": "bot", "messages": [
        {"role": "user", "content": "my locker code is 3141"}, {"role": "user", "content": "thanks"}]}).json()
    first, second = (m["id"] for m in said["messages"])
    fused = tenant_admin.post("/v1/memories/fuse", json={"ids": [first, second]}).json()["memory"]
    key = working.window_key(tenant_admin.tenant, "bot", "s1")
    assert any("3141" in m for m in redis_client.zrange(key, 0, -1))
    done = dashboard.post(f"/dashboard/memories/{first}/action",
                          data={"csrf": dashboard.csrf(), "action": "erase", "version": "2"})
    assert done.status_code == 303, done.text
    deadline = time.monotonic() + 5  # the window is scrubbed after the answer, once the erase committed
    while any("3141" in m for m in redis_client.zrange(key, 0, -1)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any("3141" in m for m in redis_client.zrange(key, 0, -1))
    asked = {"include_forgotten": "true"}
    assert tenant_admin.get(f"/v1/memories/{fused['id']}", params=asked).json()["content"] == ""
    redis_client.delete(key)
