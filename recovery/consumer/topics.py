"""The service's topics on the broker: created when missing, and waited for until every partition has a leader
(kafka-python's admin client, whichever client the loop runs on)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from recovery.config import Settings
from recovery.exceptions import BrokerError

logger = logging.getLogger("recovery.consumer")

TOPICS_READY_TIMEOUT_S = 30.0
"""Bound on the wait for new topics' partitions to have a leader."""


def wait_for_leaders(admin: KafkaAdminClient, topics: Sequence[str], timeout_s: float = TOPICS_READY_TIMEOUT_S) -> None:
    """Return once every partition of `topics` has a leader (a topic just created has none for a moment: a group
    formed then is assigned none of its partitions). Raises BrokerError after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        described = admin.describe_topics(list(topics))
        ready = {
            t["name"]
            for t in described
            if t.get("error_code") == 0
            and t.get("partitions")
            and all(p.get("error_code") == 0 and p.get("leader_id", -1) >= 0 for p in t["partitions"])
        }
        waiting = sorted(set(topics) - ready)
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise BrokerError(f"topics without a leader after {timeout_s:.0f} s: {', '.join(waiting)}")
        time.sleep(0.05)


def create_topics(s: Settings) -> None:
    """Create the service's topics (`topic_partitions` each) when missing, and wait for their leaders. kafka-python's
    errors leave it as they are (`kafka.ensure_topics` says them as a `BrokerError`)."""
    admin = KafkaAdminClient(**s.kafka_config())
    try:
        existing = set(admin.list_topics())
        wanted = [s.topic_events, s.topic_tasks, s.topic_gestures, s.topic_dlq]
        missing = [NewTopic(t, s.topic_partitions, 1) for t in wanted if t not in existing]
        if missing:
            try:
                admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass  # another instance was quicker
            logger.info("created topics", extra={"topics": [t.name for t in missing]})
        wait_for_leaders(admin, wanted)
    finally:
        admin.close()
