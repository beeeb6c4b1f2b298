"""The service loop of `recovery serve`: Kafka in, engine, one store transaction per batch, offsets, outbox out.

Effectively once (DESIGN.md principle 2):
1. Records are polled from `ops.events` (consumer group, auto-commit off) and buffered per partition.
2. A batch is taken from the buffers in event-time order across partitions (a partition that still has a
   backlog but nothing fetched holds the others back, for at most `merge_wait_s`), so a backlog is evaluated as
   `recovery replay` would evaluate it.
3. Each record is decoded and evaluated; a record that is not a valid event is queued for `recovery.dlq` with its
   original bytes, topic, partition, offset and the reason. Effects, state and the outbox rows go into one store
   transaction, committed once per batch; only then are the Kafka offsets committed (asynchronously: one that is
   lost only redelivers events the ledger knows; the last ones are committed synchronously on closing).
4. The outbox publisher sends the batch's effects to `recovery.tasks` / `recovery.gestures` (the broker's
   acknowledgement is awaited before the next store commit, while the next batch is evaluated).
A crash anywhere redelivers the batch: the ledger knows its events, effect ids are deterministic, nothing repeats.

Ownership (principle 4): customers are keyed to partitions with Kafka's default partitioner, and each customer's
state is only touched by the instance that owns the customer's partition (an event keyed to the wrong partition
is forwarded to the right one). A scope event (an outage, keyed by its own id) touches customers of every
partition: the instance that reads it writes it to the store's scope log, and each partition's owner applies it
to the partition's customers at its place in that partition's event-time order. So that no instance runs ahead of
a scope event it has not seen yet, every instance publishes a watermark per partition in the store (the event
time before which that partition's scope events are all logged) and does not process past the lowest watermark
of the partitions it does not own (for at most `barrier_wait_s`, should an owner stall). With the barrier, several
instances give exactly the effects of one.

The clock (principle 1): event time; when every assigned partition is caught up, it follows wall time minus
`lateness_s`, so deadlines fire without new events.

Modules, in the order a record goes through them: `transport` (the one door to Kafka, a protocol; `kafka` is the
kafka-python one), `reader` (polls, decodes, buffers, rebalances), `ordering` (the event-time merge and the scope
log's barrier), `evaluation` (a batch through the engine, effects and DLQ records into the outbox), `offsets`
(committed only after the store), `service` (the loop that runs them, and its failure policy); `records` holds what
they share.
"""

from recovery.consumer.records import DLQ_HEADERS, POLL_RECORDS, Pending, ScopeItem, ServiceStats, partition_of
from recovery.consumer.service import Service
from recovery.consumer.transport import TopicPartition, Transport

__all__ = [
    "DLQ_HEADERS",
    "POLL_RECORDS",
    "Pending",
    "ScopeItem",
    "Service",
    "ServiceStats",
    "TopicPartition",
    "Transport",
    "partition_of",
]
