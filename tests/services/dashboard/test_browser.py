"""The dashboard in a real browser: Debian's Chromium driven by Playwright against the real app and stack.

Each test saves screenshots of the pages it visits under test-artifacts/dashboard/ (not committed).
"""

import re

import httpx
from playwright.sync_api import expect

from tests.conftest import ADMIN_TOKEN, new_tenant_api
from tests.services.dashboard.conftest import browser_sign_in, shoot, unique


def create(api, agent_id, content, **fields):
    response = api.post("/v1/memories", json={"agent_id": agent_id, "content": content, **fields})
    assert response.status_code == 201, response.text
    return response.json()


def search_ids(api, agent_id, query):
    hits = api.post("/v1/search", json={"agent_id": agent_id, "query": query, "k": 20}).json()["hits"]
    return [h["id"] for h in hits]


def test_sign_in_and_sign_out(page, tenant_admin):
    page.goto("/dashboard/memories")
    expect(page).to_have_url(re.compile(r"/dashboard/signin\?next=%2Fdashboard%2Fmemories$"))
    shoot(page, "signin")

    page.fill("input[name=token]", "mc_not-a-real-token")
    page.click("button[type=submit]")
    expect(page.get_by_test_id("error")).to_contain_text("not valid")
    assert page.context.cookies() == []
    shoot(page, "signin-wrong-token")

    page.fill("input[name=token]", tenant_admin.token)
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/dashboard/memories$"))  # back where it was sent from
    expect(page.get_by_test_id("tenant")).to_have_text(tenant_admin.tenant)
    [cookie] = page.context.cookies()
    assert (cookie["httpOnly"], cookie["sameSite"], cookie["path"]) == (True, "Strict", "/dashboard")
    assert cookie["expires"] > 0
    page.goto("/dashboard")
    expect(page.get_by_test_id("overview-tenant")).to_have_text(tenant_admin.tenant)

    page.click("text=Sign out")
    expect(page).to_have_url(re.compile(r"/dashboard/signin\?signed_out=true$"))
    expect(page.locator(".flash")).to_contain_text("signed out")
    assert page.context.cookies() == []
    page.goto("/dashboard")
    expect(page).to_have_url(re.compile(r"/dashboard/signin"))
    assert page.errors == []


def test_search_finds_a_cube_written_through_the_api(page, tenant_admin):
    agent = unique("support")
    create(tenant_admin, agent, "Priya prefers to be contacted by email, never by phone", user_id="u42",
           tags=["preference"])
    for i in range(12):
        create(tenant_admin, agent, f"Order #{1000 + i} shipped from the Leeds warehouse", user_id="u42")
    browser_sign_in(page, tenant_admin.token)

    page.goto("/dashboard/memories")
    page.fill("input[name=q]", "how should we contact this customer?")
    page.fill("input[name=agent_id]", agent)
    page.click("[data-testid=browse-form] button[type=submit]")
    first = page.get_by_test_id("hit-link").first
    expect(first).to_have_text("Priya prefers to be contacted by email, never by phone")
    expect(page.get_by_test_id("hits")).to_contain_text("vector rank 1")
    shoot(page, "memories-search")

    page.goto("/dashboard/memories?" + str(httpx.QueryParams({"agent_id": agent, "tag": "preference"})))
    expect(page.get_by_test_id("cube-link")).to_have_count(1)
    page.goto("/dashboard/memories?" + str(httpx.QueryParams({"agent_id": agent})))
    expect(page.get_by_test_id("cube-link")).to_have_count(13)
    shoot(page, "memories-list")
    first = page.get_by_test_id("cube-link").first
    first.click()
    expect(page.get_by_test_id("content")).to_have_text(re.compile(r"Order #1011"))
    assert page.errors == []


def test_a_cube_changed_through_the_api_shows_the_new_version_and_its_diff(page, tenant_admin):
    agent = unique("agent")
    cube = create(tenant_admin, agent, "Priya lives in Leeds and works at the hospital.", tags=["profile"])
    changed = tenant_admin.patch(f"/v1/memories/{cube['id']}", json={
        "content": "Priya lives in York and works at the hospital.", "tags": ["profile", "moved"],
        "reason": "she moved"})
    assert changed.status_code == 200
    browser_sign_in(page, tenant_admin.token)

    page.goto(f"/dashboard/memories/{cube['id']}")
    expect(page.get_by_test_id("version")).to_have_text("version 2")
    expect(page.get_by_test_id("content")).to_have_text("Priya lives in York and works at the hospital.")
    diff = page.get_by_test_id("diff-2")
    expect(diff.locator("del")).to_have_text("Leeds")
    expect(diff.locator("ins")).to_have_text("York")
    expect(diff).to_have_text("Priya lives in LeedsYork and works at the hospital.")
    version = page.get_by_test_id("version-2")
    expect(version).to_contain_text("she moved")
    expect(version).to_contain_text('"moved"')  # the tags change, field by field
    key_id = tenant_admin.get("/v1/admin/keys").json()["items"][0]["id"]
    expect(page.get_by_test_id("actor-2")).to_have_text(f"key:{key_id}")
    shoot(page, "cube-with-diff")


def test_an_erase_from_the_dashboard_makes_the_cube_disappear_from_api_search(page, tenant_admin):
    agent = unique("agent")
    cube = create(tenant_admin, agent, "The alarm code of the back door is 4921")
    create(tenant_admin, agent, "The front door has no alarm")
    assert cube["id"] in search_ids(tenant_admin, agent, "alarm code back door")
    browser_sign_in(page, tenant_admin.token)

    page.goto(f"/dashboard/memories/{cube['id']}")
    page.get_by_test_id("erase").click()
    expect(page.get_by_test_id("confirm-text")).to_contain_text("removed from every version")
    page.fill("input[name=reason]", "a secret, stored by mistake")
    shoot(page, "confirm-erase")
    page.get_by_test_id("confirm").click()
    expect(page.get_by_test_id("flash")).to_contain_text("Erased")
    expect(page.get_by_test_id("status")).to_have_text("forgotten")
    expect(page.get_by_test_id("content")).to_have_text("")
    shoot(page, "cube-erased")

    assert cube["id"] not in search_ids(tenant_admin, agent, "alarm code back door")
    history = tenant_admin.get(f"/v1/memories/{cube['id']}/history").json()["items"]
    assert all(v["content"] == "" for v in history) and history[-1]["status"] == "forgotten"
    key_id = tenant_admin.get("/v1/admin/keys").json()["items"][0]["id"]
    assert history[-1]["provenance"]["actor"] == f"dashboard:key:{key_id}"
    assert history[-1]["provenance"]["reason"] == "a secret, stored by mistake"


def test_a_stored_script_does_not_execute(page, tenant_admin):
    agent = unique("agent")
    evil = '<script>window.__pwned = 1; alert("pwned")</script><img src=x onerror="window.__pwned = 2">'
    cube = create(tenant_admin, agent, evil, tags=["<b>bold</b>"], metadata={"note": evil})
    tenant_admin.post("/v1/sessions/chat-xss/messages", json={"agent_id": agent, "messages": [
        {"role": "user", "content": evil}]})
    browser_sign_in(page, tenant_admin.token)

    for path in (f"/dashboard/memories/{cube['id']}", "/dashboard/memories?" + str(httpx.QueryParams(
            {"agent_id": agent, "q": "pwned"})), "/dashboard/agent?" + str(httpx.QueryParams({"agent_id": agent})),
                 "/dashboard/session?session_id=chat-xss"):
        page.goto(path)
        page.wait_for_load_state("load")
        assert page.evaluate("window.__pwned") is None, path
        assert page.locator("main script, main img").count() == 0, path
    page.goto(f"/dashboard/memories/{cube['id']}")
    expect(page.get_by_test_id("content")).to_have_text(evil)  # shown as text, character for character
    shoot(page, "cube-script-as-text")
    assert page.errors == []  # no alert() dialog, no script error


def test_a_change_without_a_valid_csrf_token_is_refused(page, tenant_admin):
    agent = unique("agent")
    cube = create(tenant_admin, agent, "Do not forget me")
    browser_sign_in(page, tenant_admin.token)

    page.goto(f"/dashboard/memories/{cube['id']}/confirm?action=forget")
    page.evaluate("document.querySelector('main form input[name=csrf]').value = 'forged'")
    page.get_by_test_id("confirm").click()
    expect(page.get_by_test_id("error")).to_contain_text("CSRF token is missing or wrong")
    shoot(page, "csrf-refused")

    page.goto(f"/dashboard/memories/{cube['id']}/confirm?action=forget")
    page.evaluate("document.querySelector('main form input[name=csrf]').remove()")
    page.get_by_test_id("confirm").click()
    expect(page.get_by_test_id("error")).to_contain_text("CSRF")
    response = page.request.post(f"/dashboard/memories/{cube['id']}/action",
                                 form={"action": "erase", "version": "1"}, max_redirects=0)
    assert response.status == 403

    current = tenant_admin.get(f"/v1/memories/{cube['id']}").json()
    assert (current["version"], current["status"], current["content"]) == (1, "active", "Do not forget me")
    page.goto("/dashboard")
    expect(page.get_by_test_id("tenant")).to_have_text(tenant_admin.tenant)  # still signed in


def test_a_tenant_admin_cannot_see_another_tenant(page, tenant_admin, server, admin):
    other = new_tenant_api(server, admin)
    agent = unique("their-agent")
    theirs = create(other, agent, "Their customer list lives in the blue folder")
    mine = create(tenant_admin, unique("my-agent"), "My own memory")
    browser_sign_in(page, tenant_admin.token)

    page.goto(f"/dashboard/memories/{theirs['id']}")
    expect(page.locator("h1")).to_contain_text("404")
    expect(page.locator("body")).not_to_contain_text("blue folder")
    shoot(page, "other-tenant-404")
    page.goto("/dashboard/agent?" + str(httpx.QueryParams({"agent_id": agent})))
    expect(page.locator("h1")).to_contain_text("404")
    page.goto("/dashboard/memories?" + str(httpx.QueryParams({"agent_id": agent, "q": "customer list"})))
    expect(page.get_by_test_id("hit-link")).to_have_count(0)
    page.goto("/dashboard/agents")
    expect(page.locator("main")).not_to_contain_text(agent)
    expect(page.locator("main")).to_contain_text(mine["agent_id"])
    page.goto("/dashboard/tenants")
    expect(page.locator("h1")).to_contain_text("403")
    other.http.close()


def test_every_page_works_on_real_data(page, tenant_admin, server):
    agent = unique("support-bot")
    tenant_admin.put(f"/v1/agents/{agent}/core/persona", json={"content": "You are Juno, a calm support agent."})
    tenant_admin.post("/v1/sessions/chat-42/messages", json={"agent_id": agent, "user_id": "u42", "messages": [
        {"role": "user", "content": "My order #1234 never arrived."},
        {"role": "assistant", "name": "juno", "content": "Sorry! Let me check order #1234."}]})
    tenant_admin.put("/v1/sessions/chat-42/scratchpad", json={"content": "Goal: resend #1234 today."})
    a = create(tenant_admin, agent, "Priya asked to be contacted by email", user_id="u42")
    b = create(tenant_admin, agent, "Priya prefers email over phone", user_id="u42")
    fused = tenant_admin.post("/v1/memories/fuse", json={"ids": [a["id"], b["id"]], "content": "Priya: email only",
                                                         "reason": "same preference"}).json()["memory"]
    lesson = create(tenant_admin, agent, "Check the courier's tracking page before apologising", kind="procedural",
                    data={"polarity": "success", "uses": 4, "successes": 3, "failures": 1, "status": "trusted"})
    browser_sign_in(page, tenant_admin.token)

    page.goto("/dashboard")
    expect(page.get_by_test_id("memories")).to_have_text("7")  # 2 messages, 2 facts, the fused one, block, lesson
    expect(page.locator("svg.chart")).to_have_count(5)
    shoot(page, "overview")

    page.goto("/dashboard/agents")
    shoot(page, "agents")
    page.click(f"text={agent}")
    expect(page.get_by_test_id("agent-id")).to_have_text(agent)
    expect(page.get_by_test_id("core-budget")).to_contain_text("of 1000 tokens used")
    expect(page.locator("main")).to_contain_text("You are Juno")
    lessons = page.locator("table").last
    expect(lessons).to_contain_text("trusted")
    expect(lessons).to_contain_text("0.67")  # η = (3 + 1) / (4 + 2)
    expect(lessons).to_contain_text("4 / 3 / 1")
    shoot(page, "agent")
    page.get_by_role("link", name="chat-42").click()
    expect(page.get_by_test_id("scratchpad")).to_have_text("Goal: resend #1234 today.")
    expect(page.locator("main table")).to_contain_text("Let me check order #1234")
    shoot(page, "session")

    page.goto(f"/dashboard/memories/{fused['id']}")
    expect(page.locator("main")).to_contain_text("Derived from")
    graph = page.locator("svg.chart a")
    expect(graph).to_have_count(2)
    shoot(page, "cube-lineage")
    page.goto(f"/dashboard/memories/{a['id']}")
    expect(page.locator("main")).to_contain_text("Derived from it")
    page.locator("svg.chart a").first.click()
    expect(page).to_have_url(re.compile(fused["id"]))

    page.goto(f"/dashboard/memories/{lesson['id']}/edit")
    shoot(page, "edit")
    page.fill("textarea[name=content]", "Check the courier's tracking page before apologising, then apologise")
    page.fill("input[name=reason]", "clearer")
    page.click("text=Review the change")
    expect(page.get_by_test_id("review-diff").locator("ins")).to_have_text(", then apologise")
    shoot(page, "edit-review")
    page.get_by_test_id("confirm").click()
    expect(page.get_by_test_id("version")).to_have_text("version 2")
    key_id = tenant_admin.get("/v1/admin/keys").json()["items"][0]["id"]
    expect(page.get_by_test_id("actor-2")).to_have_text(f"dashboard:key:{key_id}")

    page.goto("/dashboard/jobs")
    page.fill("[data-testid=run-form] input[name=agent_id]", agent)
    page.fill("[data-testid=run-form] input[name=user_id]", "u42")
    page.click("[data-testid=run-form] button[type=submit]")
    expect(page.get_by_test_id("job-state")).to_have_text("queued")
    shoot(page, "job")
    [job] = tenant_admin.get("/v1/jobs", params={"agent_id": agent}).json()["items"]
    assert (job["kind"], job["user_id"], job["trigger"]) == ("consolidate", "u42", "api")
    page.goto("/dashboard/jobs")
    expect(page.get_by_test_id("jobs")).to_contain_text(agent)
    shoot(page, "jobs")

    page.goto("/dashboard/keys")
    page.fill("input[name=name]", "from-the-dashboard")
    page.click("button:has-text('Create')")
    token = page.get_by_test_id("token").inner_text().strip()
    shoot(page, "key-created")
    assert httpx.get(f"{server}/v1/agents", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    page.goto("/dashboard/keys")
    expect(page.get_by_test_id("keys")).not_to_contain_text(token)
    shoot(page, "keys")
    page.locator("tr", has_text="from-the-dashboard").locator("text=Revoke").click()
    shoot(page, "confirm-revoke")
    page.get_by_test_id("confirm").click()
    expect(page.get_by_test_id("flash")).to_have_text("Revoked.")
    assert httpx.get(f"{server}/v1/agents", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert page.errors == []


def test_the_admin_token_picks_a_tenant(page, tenant_admin):
    create(tenant_admin, unique("agent"), "in the picked tenant")
    browser_sign_in(page, ADMIN_TOKEN)
    expect(page).to_have_url(re.compile(r"/dashboard/tenants$"))
    shoot(page, "tenants")
    page.locator("tr", has_text=tenant_admin.tenant).locator("button").click()
    expect(page.get_by_test_id("tenant")).to_have_text(tenant_admin.tenant)
    expect(page.get_by_test_id("memories")).to_have_text("1")
