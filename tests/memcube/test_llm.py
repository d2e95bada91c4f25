"""The OpenAI-protocol LLM client against the local stub: validation, bounded retries, token counting."""

import pytest
from pydantic import BaseModel

from memcube.llm import LLMFailed, OpenAILLM, Usage, load_prompt
from tests.llm_server import Reply


class Answer(BaseModel):
    value: int


def client(llm, retries=2):
    return OpenAILLM(base_url=llm.url, api_key=None, model="stub-model", timeout=10, max_retries=retries)


def test_a_valid_answer_is_parsed_and_its_tokens_counted(llm):
    llm.reset(lambda request: Reply('{"value": 7}', prompt_tokens=120, completion_tokens=9))
    usage = Usage()
    assert client(llm).complete_json("give me seven", Answer, usage=usage).value == 7
    assert usage.take() == {"llm_calls": 1, "tokens_in": 120, "tokens_out": 9}
    [request] = llm.requests
    assert request.body["model"] == "stub-model" and request.prompt == "give me seven"
    assert request.body["response_format"] == {"type": "json_object"}


def test_a_malformed_answer_is_retried_with_the_error_shown_then_accepted(llm):
    answers = iter(["not json at all", "```json\n{\"value\": 3}\n```"])
    llm.reset(lambda request: next(answers))
    usage = Usage()
    assert client(llm).complete_json("three", Answer, usage=usage).value == 3
    assert usage.calls == 2
    retry = llm.requests[1].messages
    assert retry[2] == {"role": "assistant", "content": "not json at all"}
    assert "not valid" in retry[3]["content"]


def test_a_check_can_reject_an_answer(llm):
    llm.reset(lambda request: '{"value": -1}')

    def positive(answer):
        if answer.value < 0:
            raise ValueError("value must be positive")

    with pytest.raises(LLMFailed, match="value must be positive"):
        client(llm, retries=1).complete_json("x", Answer, usage=Usage(), check=positive)
    assert len(llm.requests) == 2


def test_retries_are_bounded_and_server_errors_retried_but_not_bad_requests(llm):
    llm.reset(lambda request: Reply(status=500))
    usage = Usage()
    with pytest.raises(LLMFailed, match="in 2 attempt"):
        client(llm, retries=1).complete_json("x", Answer, usage=usage)
    assert usage.calls == 2 and usage.tokens_in == 0
    llm.reset(lambda request: Reply(status=401))
    with pytest.raises(LLMFailed, match="HTTP 401"):
        client(llm, retries=3).complete_json("x", Answer, usage=Usage())
    assert len(llm.requests) == 1


def test_prompts_are_versioned_files():
    prompt = load_prompt("consolidate_v1")
    text = prompt.render(facts="F1: The user lives in Lisbon", episodes="[1] I moved to Porto")
    assert prompt.name == "consolidate_v1" and "F1: The user lives in Lisbon" in text and "$" not in text
    assert "$episodes" in load_prompt("summarize_v1").template.template
