"""The outbox relay against the real database: publish, mark sent, keep what the broker refused."""

import threading

from memcube.errors import Unavailable
from memcube.outbox import OutboxRelay, relay_once
from memcube.store import outbox as store


def ours(conn, message_id):
    return conn.execute("SELECT sent_at, attempts, last_error, available_at > now() AS later FROM outbox "
                        "WHERE id = %s", (message_id,)).fetchone()


def test_a_published_row_is_marked_sent_and_not_published_again(conn):
    message_id = store.insert_message(conn, task="memcube.consolidate", payload={"job_id": "j-1"})
    published = []
    relay_once(conn, lambda task, payload: published.append((task, payload)))
    assert ("memcube.consolidate", {"job_id": "j-1"}) in published
    assert ours(conn, message_id)["sent_at"] is not None
    published.clear()
    relay_once(conn, lambda task, payload: published.append((task, payload)))
    assert ("memcube.consolidate", {"job_id": "j-1"}) not in published


def test_a_row_the_broker_refused_stays_unsent_and_waits_before_the_next_try(conn):
    message_id = store.insert_message(conn, task="memcube.consolidate", payload={"job_id": "j-2"})
    # First in line, ahead of any unsent row other tests left.
    conn.execute("UPDATE outbox SET available_at = now() - interval '1 day' WHERE id = %s", (message_id,))

    def broker_down(task, payload):
        raise Unavailable("connection refused")

    result = relay_once(conn, broker_down)
    assert result.failed == 1 and result.sent == 0
    row = ours(conn, message_id)
    assert (row["sent_at"], row["attempts"], row["last_error"], row["later"]) == \
        (None, 1, "connection refused", True)


def test_two_relays_never_take_the_same_row(runtime):
    with runtime.pool.connection() as c:
        message_id = store.insert_message(c, task="memcube.consolidate", payload={"job_id": "j-3"})
    try:
        with runtime.pool.connection() as first, runtime.pool.connection() as second:
            claimed = [row["id"] for row in store.claim_messages(first, limit=1000)]
            assert message_id in claimed
            assert message_id not in [row["id"] for row in store.claim_messages(second, limit=1000)]
    finally:
        with runtime.pool.connection() as c:
            c.execute("DELETE FROM outbox WHERE id = %s", (message_id,))


def test_the_relay_thread_publishes_as_soon_as_a_row_commits(runtime, database_url):
    seen = threading.Event()

    def publish(task, payload):
        if payload.get("job_id") == "j-4":
            seen.set()

    relay = OutboxRelay(database_url, publish, poll_seconds=30)  # polling alone would be far too slow
    relay.start()
    try:
        with runtime.pool.connection() as c:
            message_id = store.insert_message(c, task="memcube.consolidate", payload={"job_id": "j-4"})
        assert seen.wait(10)
    finally:
        relay.stop()
        with runtime.pool.connection() as c:
            c.execute("DELETE FROM outbox WHERE id = %s", (message_id,))
