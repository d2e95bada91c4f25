"""A small agent loop on MemCube, with the Python SDK: each turn appends the user's message to the session,
asks MemCube for a context, answers, and appends the answer; at the end the agent records what it did as a trajectory, from which
MemCube distils lessons for next time.

Against `memcube up` (it prints the admin token; a key of your own works the same):

    MEMCUBE_API_KEY=<admin token or key> python examples/agent_loop.py

MEMCUBE_URL defaults to http://127.0.0.1:8000. The "model" here is a stand-in function, so that the example
runs anywhere: a real agent sends `context.text` and the user's message to its LLM instead.
"""

from __future__ import annotations

import uuid

from memcube_client import MemCube

AGENT, USER = "travel-bot", "ana"
TASK = "Plan a weekend trip to Lisbon"
TURNS = [
    "Hi! I'm Ana. I'm vegetarian and I hate early flights.",
    "Can you plan a weekend in Lisbon for me?",
    "What do you remember about my food preferences?",
]


def answer(context_text: str, message: str) -> str:
    """Stand-in for the LLM call: says which remembered lines it would lean on."""
    remembered = [line[2:] for line in context_text.splitlines() if line.startswith("- ")]
    if remembered:
        return f"Going by what I remember ({remembered[0]!r}), here is my suggestion."
    return "Noted! Tell me more."


def main() -> None:
    session = f"chat-{uuid.uuid4().hex[:8]}"
    with MemCube() as memory:  # MEMCUBE_URL and MEMCUBE_API_KEY from the environment
        memory.core.put(AGENT, "persona", "You are Juno, a brief and friendly travel assistant.")
        memory.core.put(AGENT, "human", "Name: Ana.", user_id=USER)
        for message in TURNS:
            # The user's turn first (durably), then the context, which shows it in the working window.
            memory.sessions.append(session, AGENT, [{"role": "user", "content": message}], user_id=USER)
            context = memory.context(AGENT, message, 800, user_id=USER, session_id=session)
            reply = answer(context.text, message)
            memory.sessions.append(session, AGENT, [{"role": "assistant", "name": "juno", "content": reply}],
                                   user_id=USER)
            print(f"user: {message}\njuno: {reply}\n  (context: {context.tokens} tokens, "
                  f"{len(context.sections['recalled'].items)} recalled memories)")
        lessons = memory.lessons.list(AGENT, task=TASK, user_id=USER).items
        steps = [{"action": "ask about preferences", "observation": "vegetarian, no early flights"},
                 {"tool": "search_flights", "action": "search flights after 10:00", "observation": "2 found"},
                 {"tool": "search_restaurants", "action": "pick vegetarian restaurants", "observation": "3 found"}]
        recorded = memory.trajectories.record(AGENT, TASK, steps, "success", user_id=USER, session_id=session,
                                              lessons_used=[lesson.id for lesson in lessons])
        print(f"recorded trajectory {recorded.id} ({len(lessons)} lessons were known for this task)")
        hits = memory.search(AGENT, "food preferences", user_id=USER, k=3).hits
        print("search 'food preferences':", [hit.content for hit in hits])


if __name__ == "__main__":
    main()
