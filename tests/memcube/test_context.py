"""Context assembly: the pure budget fitting (with a property sweep) and the assembly on the real stack."""

from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from memcube import context, core, cube, session, tokens
from memcube.context import Candidates, Piece, fit_context, render
from memcube.errors import InvalidInput, NotFound
from memcube.models import ContextRequest, CoreBlockPut, MemCubeCreate, MessageAppend, MessageIn
from memcube.search import SearchStats
from memcube.paging import apply_paging
from memcube.store import cubes as cube_store

TITLES = {s: tokens.count(t) for s, t in context.TITLES.items()}


def piece(text):
    return Piece(text, tokens.count(text))


def pieces(n, words, prefix):
    made = [piece(f"{prefix} {i} " + "w " * (words - 2)) for i in range(n)]
    assert all(p.tokens == words for p in made), "pick a prefix of one token"
    return made


def test_core_blocks_are_whole_or_the_budget_is_refused_with_the_minimum():
    blocks, paged = pieces(2, 10, "block"), pieces(2, 10, "page")
    candidates = Candidates(blocks=blocks, paged=paged, recalled=pieces(3, 5, "r"))
    minimum = TITLES["core"] + 20
    with pytest.raises(InvalidInput, match=f"at least {minimum}") as info:
        fit_context(candidates, budget=minimum - 1, working_share=0.5, title_tokens=TITLES)
    assert info.value.details == {"minimum": minimum}
    fitted = fit_context(candidates, budget=minimum, working_share=0.5, title_tokens=TITLES)
    assert fitted.sections["core"] == blocks and fitted.sections["recalled"] == []
    assert fitted.total == minimum and fitted.dropped == {"core": 2, "lessons": 0, "recalled": 3, "working": 0}
    # Cubes paged into core come right after the blocks, before anything else.
    budget = minimum + 10 + TITLES["recalled"] + 5  # one paged cube, then one recalled memory
    assert TITLES["recalled"] + 5 < 10
    fitted = fit_context(candidates, budget=budget, working_share=0.5, title_tokens=TITLES)
    assert fitted.sections["core"] == blocks + paged[:1] and len(fitted.sections["recalled"]) == 1


def test_working_share_first_then_lessons_and_recalled_then_the_rest_of_the_window():
    messages = pieces(10, 10, "m")  # oldest first
    c = Candidates(lessons=pieces(1, 10, "l"), recalled=pieces(3, 10, "r"), messages=messages)
    budget = 100
    fitted = fit_context(c, budget=budget, working_share=0.5, title_tokens=TITLES)
    # Working gets up to 50 (title + 4 messages), lessons and recalled take what they can of the rest,
    # then the window goes on back with what is left.
    taken = fitted.sections["working"]
    assert taken == messages[-len(taken):] and len(taken) >= 4
    assert len(fitted.sections["lessons"]) == 1 and len(fitted.sections["recalled"]) >= 1
    assert fitted.total <= budget
    assert fitted.total == tokens.count(render(fitted)[1])


def test_the_window_never_skips_a_message_to_fit_an_older_one():
    messages = [piece("old " * 3), piece("huge " * 80), piece("new " * 3)]
    fitted = fit_context(Candidates(messages=messages), budget=40, working_share=1.0, title_tokens=TITLES)
    assert fitted.sections["working"] == [messages[2]] and fitted.dropped["working"] == 2


texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=80)


@hsettings(max_examples=150, deadline=None)
@given(core_texts=st.lists(texts, max_size=4), paged_texts=st.lists(texts, max_size=3),
       lesson_texts=st.lists(texts, max_size=3),
       recalled_texts=st.lists(texts, max_size=8), pad=st.none() | texts, message_texts=st.lists(texts, max_size=10),
       budget=st.integers(1, 400), share=st.floats(0, 1))
def test_context_never_exceeds_the_budget_and_keeps_core_whole(core_texts, paged_texts, lesson_texts,
                                                               recalled_texts, pad, message_texts, budget, share):
    c = Candidates(blocks=[piece(t) for t in core_texts], paged=[piece(t) for t in paged_texts],
                   lessons=[piece(t) for t in lesson_texts], recalled=[piece(t) for t in recalled_texts],
                   scratchpad=piece(pad) if pad else None, messages=[piece(t) for t in message_texts])
    core_need = TITLES["core"] + sum(p.tokens for p in c.blocks) if c.blocks else 0
    try:
        fitted = fit_context(c, budget=budget, working_share=share, title_tokens=TITLES)
    except InvalidInput as exc:
        assert budget < core_need and exc.details == {"minimum": core_need}
        return
    texts_by_section, whole = render(fitted)
    core = fitted.sections["core"]
    assert core[:len(c.blocks)] == list(c.blocks)
    # By identity: equal pieces (two lessons "0") are still two pieces, of which fitting may keep one.
    assert [p for p in c.paged if any(p is q for q in core[len(c.blocks):])] == core[len(c.blocks):]
    assert tokens.count(whole) == fitted.total <= budget
    for name, text in texts_by_section.items():
        assert tokens.count(text) == fitted.tokens[name]
    window = [p for p in fitted.sections["working"] if p is not c.scratchpad]
    # The newest messages, without gaps but for those recall already shows.
    shown_by_recall = {context._key(p) for p in fitted.sections["recalled"]}
    rest = list(window)
    for message in reversed(c.messages):
        if not rest:
            break
        if rest[-1] is message:
            rest.pop()
        else:
            assert context._key(message) in shown_by_recall
    assert rest == []
    for name in ("lessons", "recalled"):
        assert [p for p in getattr(c, name) if any(p is q for q in fitted.sections[name])] == fitted.sections[name]


# --- assembly on the real stack ---------------------------------------------------------------------------------


@pytest.fixture()
def env(conn, redis_client, embedder, settings, tenant):
    class Env:
        def add(self, agent_id, contents, **fields):
            items = [MemCubeCreate(agent_id=agent_id, content=c, **fields) for c in contents]
            return cube.create_cubes(conn, tenant=tenant, actor="t", items=items, embedder=embedder,
                                     settings=settings)

        def say(self, session_id, contents, agent_id="agent", user_id=None):
            request = MessageAppend(agent_id=agent_id, user_id=user_id,
                                    messages=[MessageIn(role="user", content=c) for c in contents])
            return session.append_messages(conn, redis_client, tenant=tenant, actor="t", session_id=session_id,
                                           request=request, embedder=embedder, settings=settings).messages

        def block(self, label, content, agent_id="agent", user_id=None):
            core.put_block(conn, tenant=tenant, actor="t", agent_id=agent_id, user_id=user_id, label=label,
                           body=CoreBlockPut(content=content), embedder=embedder, settings=settings)

        def context(self, query, budget=2000, agent_id="agent", using=None, **fields):
            request = ContextRequest(agent_id=agent_id, query=query, budget=budget, **fields)
            return context.assemble_context(conn, redis_client, tenant=tenant, request=request, embedder=embedder,
                                            settings=using or settings, stats=SearchStats(0), access=None)

    return Env()


def test_sections_hold_core_lessons_recalled_and_the_window_without_repeats(env):
    env.block("persona", "You are Juno, a concise travel assistant.")
    env.add("agent", ["Always confirm the travel dates before booking anything."], kind="procedural")
    env.add("agent", ["Caroline adopted a rescue dog named Biscuit in March."], kind="semantic")
    said = env.say("s1", ["My dog Biscuit hates long car rides.", "Can we take the train to Lyon?"])
    ctx = env.context("dog Biscuit travel", session_id="s1")
    sections = ctx.sections
    assert [i.label for i in sections["core"].items] == ["persona"]
    assert [i.content for i in sections["lessons"].items] == [
        "Always confirm the travel dates before booking anything."]
    recalled = [i.content for i in sections["recalled"].items]
    assert "Caroline adopted a rescue dog named Biscuit in March." in recalled
    assert "My dog Biscuit hates long car rides." not in recalled  # already in the working window
    assert [i.id for i in sections["working"].items] == [m.id for m in said]
    assert ctx.text.index("# Core memory") < ctx.text.index("# Lessons") < ctx.text.index("# Recalled memories") \
        < ctx.text.index("# Working memory")
    assert "user: Can we take the train to Lyon?" in sections["working"].text
    assert ctx.tokens == sum(s.tokens for s in sections.values()) == tokens.count(ctx.text) <= 2000


def test_no_lessons_means_an_empty_section(env):
    env.add("agent", ["The office closes at six."])
    ctx = env.context("when does the office close?")
    assert ctx.sections["lessons"].items == [] and ctx.sections["lessons"].text == ""
    assert "# Lessons" not in ctx.text


def test_a_budget_below_core_is_refused_with_the_minimum(env):
    env.block("persona", "You are Juno, a concise travel assistant who always double-checks dates.")
    env.add("agent", ["Anything else."])
    with pytest.raises(InvalidInput, match="at least") as info:
        env.context("anything", budget=5)
    minimum = info.value.details["minimum"]
    ctx = env.context("anything", budget=minimum)
    assert ctx.tokens == minimum and ctx.sections["core"].items[0].label == "persona"


def test_two_users_of_one_agent_never_see_each_other(env):
    env.block("human", "Name: Ana. Allergic to peanuts.", user_id="ana")
    env.block("human", "Name: Bo. Collects vintage cameras.", user_id="bo")
    env.block("persona", "You are a helpful assistant.")
    env.say("ana-chat", ["I booked the Lisbon flat for July.", "My passport number is AN-1234."], user_id="ana")
    env.say("bo-chat", ["I booked the Oslo cabin for July.", "My passport number is BO-9876."], user_id="bo")
    env.add("agent", ["Passport renewals take six weeks at the consulate."])  # the agent's, no user's
    for user, other in (("ana", "bo"), ("bo", "ana")):
        # The query names the other user's secrets; nothing of theirs may come back.
        query = "passport number Oslo cabin Lisbon flat cameras peanuts"
        for fields in ({"user_id": user}, {"session_id": f"{user}-chat"}):
            ctx = env.context(query, **fields)
            assert ctx.user_id == user
            assert other.upper() not in ctx.text and other.capitalize() not in ctx.text, ctx.text
            assert user.upper() in ctx.text or user.capitalize() in ctx.text
            assert "Passport renewals take six weeks" in ctx.sections["recalled"].text
        assert "You are a helpful assistant." in env.context(query, user_id=user).sections["core"].text
    with pytest.raises(NotFound):
        env.context("passport", user_id="bo", session_id="ana-chat")


def test_a_user_block_overrides_the_agent_block_of_the_same_label(env):
    env.block("human", "Unknown visitor.")
    env.block("human", "Name: Ana.", user_id="ana")
    assert [i.content for i in env.context("who", user_id="ana").sections["core"].items] == ["Name: Ana."]
    assert [i.content for i in env.context("who").sections["core"].items] == ["Unknown visitor."]


def test_unknown_agent_and_session_are_not_found(env):
    with pytest.raises(NotFound, match="agent nobody"):
        env.context("anything", agent_id="nobody")
    env.add("agent", ["something"])
    with pytest.raises(NotFound, match="session nope"):
        env.context("anything", session_id="nope")


def test_assembly_writes_nothing_and_background_paging_brings_in_what_keeps_being_recalled(env, conn, settings):
    paging = settings.model_copy(update={"paging_min_accesses": 3})
    env.block("persona", "You are Juno.")
    [fact] = env.add("agent", ["The user's home station is Lyon Part-Dieu."], kind="semantic")
    cube_store.record_access(conn, {fact["id"]: (3, datetime.now(timezone.utc))})
    ctx = env.context("home station", using=paging)
    assert fact["id"] in [i.id for i in ctx.sections["recalled"].items]
    tenant = ctx_tenant(conn, fact["id"])
    assert len(cube.history(conn, tenant=tenant, cube_id=fact["id"])) == 1  # a read wrote no version
    moves = apply_paging(conn, tenant=tenant, agent_id="agent", user_id=None, settings=paging,
                         actor="paging:background")
    assert [(m.id, m.tier) for m in moves] == [(fact["id"], "core")]
    ctx = env.context("home station", using=paging)
    assert fact["id"] in [i.id for i in ctx.sections["core"].items]
    assert fact["id"] not in [i.id for i in ctx.sections["recalled"].items]
    assert cube.history(conn, tenant=tenant, cube_id=fact["id"])[-1]["provenance"]["source"] == "paging"
    # A paged-in cube is not a block: a budget that holds only the blocks still answers, without it.
    with pytest.raises(InvalidInput) as info:
        env.context("home station", budget=1)
    small = env.context("home station", budget=info.value.details["minimum"])
    assert [i.label for i in small.sections["core"].items] == ["persona"] and small.sections["core"].dropped == 1


def ctx_tenant(conn, cube_id):
    return conn.execute("SELECT tenant FROM memcubes WHERE id = %s", (cube_id,)).fetchone()["tenant"]


def test_messages_the_window_cannot_show_are_recalled_and_filler_is_not(env):
    said = env.say("chat", ["My name is Priya Sharma and I live in Berlin."] +
                   [f"x{i}" for i in range(28)] + ["Can you check my order status?"], user_id="priya")
    ctx = env.context("where does the customer live?", budget=120, session_id="chat")
    working = [i.id for i in ctx.sections["working"].items]
    recalled = [i.id for i in ctx.sections["recalled"].items]
    assert said[0].id not in working  # too old for the room the window has
    assert said[0].id in recalled  # but recalled
    # Nothing else but the turns next to it (found by its words): no filler that shares no word.
    assert set(recalled) <= {m.id for m in said[:3]}
    assert not set(working) & set(recalled)


def test_a_long_memory_shows_the_sentences_that_answer():
    text = ("We spent the morning at the market. The kids wanted ice cream. Then it rained. "
            "Later Melanie painted a sunrise over the lake, her favourite subject. We drove home at six.")
    words = context.query_words("What did Melanie paint?")
    short = context.snippet(text, words, 20, tokens.count_many)
    assert short == "Later Melanie painted a sunrise over the lake, her favourite subject."
    assert context.snippet(text, words, 1000, tokens.count_many) == text
    text += " Melanie says painting calms her."
    two = context.snippet(text, words, 30, tokens.count_many)
    assert two == ("Later Melanie painted a sunrise over the lake, her favourite subject. … "
                   "Melanie says painting calms her.")
    assert tokens.count(two) <= 30


def test_recall_fills_a_large_budget_and_leaves_summaries_out(env):
    facts = [f"Trip note {i}: the museum in city {i} opens at nine" for i in range(60)]
    env.add("agent", facts)
    env.add("agent", ["Session summary: the user asked about museum opening hours in many cities"], kind="summary")
    small, large = env.context("museum opening hours", budget=300), env.context("museum opening hours", budget=3000)
    assert len(large.sections["recalled"].items) == 60 > len(small.sections["recalled"].items) > 0
    assert all(i.kind == "episodic" for i in large.sections["recalled"].items)
    assert large.tokens <= 3000
