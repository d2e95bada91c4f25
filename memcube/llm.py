"""The LLM behind a small protocol, with one implementation: any OpenAI-compatible chat endpoint.

Answers are JSON validated with pydantic; a malformed answer or a failed call is retried a bounded number
of times, then LLMFailed is raised. Every call's tokens are counted into a Usage.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from importlib import resources
from string import Template
from typing import Callable, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from memcube.config import Settings
from memcube.errors import ConfigError, Unavailable

log = logging.getLogger(__name__)

T = TypeVar("T", bound=BaseModel)

SYSTEM = "You maintain the long-term memory of an AI agent. You answer with one JSON object and nothing else."
# Status codes that no retry can fix: the request itself is wrong (bad model, key, or body).
_FATAL_STATUS = {400, 401, 403, 404, 422}


class LLMFailed(Unavailable):
    """The LLM gave no valid answer within the retries."""


@dataclass(frozen=True)
class Prompt:
    """A versioned prompt file of memcube/prompts: `name` is its file name without `.txt`, e.g. consolidate_v1."""

    name: str
    template: Template

    def render(self, **values: str) -> str:
        return self.template.substitute(**values)


def load_prompt(name: str) -> Prompt:
    """Return the prompt in memcube/prompts/<name>.txt; raises ConfigError when there is none."""
    path = resources.files("memcube").joinpath(f"prompts/{name}.txt")
    try:
        return Prompt(name, Template(path.read_text(encoding="utf-8")))
    except FileNotFoundError as exc:
        raise ConfigError(f"no prompt {name} in memcube/prompts") from exc


@dataclass
class Usage:
    """Calls and tokens sent and received, added up across threads."""

    calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, *, calls: int = 0, tokens_in: int = 0, tokens_out: int = 0) -> None:
        with self._lock:
            self.calls += calls
            self.tokens_in += tokens_in
            self.tokens_out += tokens_out

    def take(self) -> dict[str, int]:
        """Return what was counted since the last take, and start counting afresh."""
        with self._lock:
            taken = {"llm_calls": self.calls, "tokens_in": self.tokens_in, "tokens_out": self.tokens_out}
            self.calls = self.tokens_in = self.tokens_out = 0
        return taken


class LLM(Protocol):
    """Answers a prompt with JSON of a given shape."""

    model: str

    def complete_json(self, prompt: str, schema: type[T], *, usage: Usage,
                      check: Callable[[T], None] | None = None) -> T:
        """Return the answer validated by `schema` and by `check` (which raises ValueError on a bad answer);
        raises LLMFailed when no valid answer came within the retries."""
        ...


def parse_json_answer(text: str, schema: type[T]) -> T:
    """Validate an answer, tolerating a Markdown code fence around the JSON; raises ValueError."""
    body = text.strip()
    if body.startswith("```"):
        body = body.split("\n", 1)[1] if "\n" in body else ""
        body = body.rsplit("```", 1)[0]
    try:
        return schema.model_validate_json(body)
    except ValidationError as exc:
        raise ValueError(_short_error(exc)) from exc


def _short_error(exc: ValidationError) -> str:
    problems = exc.errors()[:3]
    return "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ())) or 'answer'}: {e.get('msg')}" for e in problems)


class OpenAILLM:
    """Chat completions through the official `openai` client against any compatible endpoint."""

    def __init__(self, *, base_url: str, api_key: str | None, model: str, timeout: float, max_retries: int) -> None:
        import openai

        self._openai = openai
        # The client's own retries are off: this class counts and bounds every attempt itself.
        self._client = openai.OpenAI(base_url=base_url, api_key=api_key or "not-needed", timeout=timeout,
                                     max_retries=0)
        self.model = model
        self._max_retries = max_retries

    def complete_json(self, prompt: str, schema: type[T], *, usage: Usage,
                      check: Callable[[T], None] | None = None) -> T:
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]
        problem = "no attempt"
        for attempt in range(self._max_retries + 1):
            if attempt:
                log.info("LLM attempt %d of %d after: %s", attempt + 1, self._max_retries + 1, problem)
            try:
                response = self._client.chat.completions.create(
                    model=self.model, messages=messages, temperature=0,  # type: ignore[arg-type]
                    response_format={"type": "json_object"})
            except self._openai.APIStatusError as exc:
                usage.add(calls=1)
                problem = f"HTTP {exc.status_code}: {str(exc)[:300]}"
                if exc.status_code in _FATAL_STATUS:
                    break
                time.sleep(min(2.0 ** attempt, 10.0))
                continue
            except self._openai.APIConnectionError as exc:
                usage.add(calls=1)
                problem = f"cannot reach the LLM: {exc}"
                time.sleep(min(2.0 ** attempt, 10.0))
                continue
            tokens = response.usage
            usage.add(calls=1, tokens_in=tokens.prompt_tokens if tokens else 0,
                      tokens_out=tokens.completion_tokens if tokens else 0)
            text = (response.choices[0].message.content if response.choices else None) or ""
            try:
                answer = parse_json_answer(text, schema)
                if check is not None:
                    check(answer)
                return answer
            except ValueError as exc:
                problem = f"malformed answer: {exc}"
                # Show the model its answer and what was wrong with it, then ask again.
                messages = messages[:2] + [
                    {"role": "assistant", "content": text[:4000]},
                    {"role": "user", "content": f"That answer is not valid ({str(exc)[:500]}). "
                                                "Answer again with only the JSON object described above."}]
        raise LLMFailed(f"the LLM ({self.model}) gave no valid answer in {attempt + 1} attempt(s): {problem}",
                        details={"model": self.model, "attempts": attempt + 1})


def build_llm(settings: Settings) -> LLM | None:
    """Return the configured LLM, or None when MEMCUBE_LLM_BASE_URL is not set."""
    if not settings.llm_base_url:
        return None
    return OpenAILLM(base_url=settings.llm_base_url, api_key=settings.openai_api_key, model=settings.llm_model,
                     timeout=settings.llm_timeout_seconds, max_retries=settings.llm_max_retries)

