"""Core blocks through memcube functions: labels, versions, per-scope budgets."""

import uuid

import pytest

from memcube import core
from memcube.errors import InvalidInput, NotFound, StaleVersion, TooLarge
from memcube.models import CoreBlockPut


@pytest.fixture()
def put(conn, embedder, settings):
    tenant = f"t-{uuid.uuid4().hex[:8]}"

    def _put(label, content, user_id=None, using=None, **kwargs):
        return core.put_block(conn, tenant=tenant, actor="t", agent_id="agent", user_id=user_id, label=label,
                              body=CoreBlockPut(content=content), embedder=embedder, settings=using or settings,
                              **kwargs)

    _put.tenant = tenant
    return _put


def test_labels_are_checked_outside_http_too(put):
    for label in ("", "has space", "-x", "x" * 65, "a/b"):
        with pytest.raises(InvalidInput, match="label"):
            put(label, "content")


def test_blocks_version_and_scopes_do_not_mix(conn, put, settings):
    first, created = put("persona", "v1")
    assert created and first.block.version == 1 and first.block.label == "persona"
    again, created = put("persona", "v1")
    assert not created and again.block.version == 1
    second, _ = put("persona", "v2", if_match=1)
    assert second.block.version == 2 and second.block.id == first.block.id
    with pytest.raises(StaleVersion):
        put("persona", "v3", if_match=1)
    user_block, created = put("persona", "for ana", user_id="ana")
    assert created and user_block.block.id != first.block.id
    assert core.get_block(conn, tenant=put.tenant, agent_id="agent", user_id=None, label="persona")["content"] == "v2"
    with pytest.raises(NotFound, match="no core block 'human'"):
        core.get_block(conn, tenant=put.tenant, agent_id="agent", user_id=None, label="human")


def test_each_scope_has_its_own_budget(put, settings):
    tight = settings.model_copy(update={"core_budget_tokens": 10, "core_block_max_tokens": 8})
    put("a", "one two three four five six", using=tight)
    with pytest.raises(TooLarge, match="MEMCUBE_CORE_BLOCK_MAX_TOKENS"):
        put("b", "w " * 9, using=tight)
    with pytest.raises(TooLarge, match="MEMCUBE_CORE_BUDGET_TOKENS"):
        put("b", "one two three four five", using=tight)
    put("b", "one two three four five", user_id="ana", using=tight)  # another scope, another budget
    put("a", "one two", using=tight)  # replacing a block frees its tokens
    put("b", "one two three four five", using=tight)
