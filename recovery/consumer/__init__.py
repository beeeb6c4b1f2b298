"""The service loop of `recovery serve`: Kafka in, engine, one store transaction per batch, offsets, outbox out.

Effectively once (DESIGN.md principle 2):
1. Records are polled from `ops.events` (consumer group, auto-commit off) and buffered per partition.
2. Every customer lives in one partition, so each partition is evaluated in its own order by an engine of its own,
   with the partition's event-time clock (as Kafka Streams keeps stream time per partition): results depend on
   neither fetch timing, nor the order partitions are assigned in, nor restarts. A backlog is evaluated as
   `recovery replay` evaluates the same events.
3. Each record is decoded and evaluated; a record that is not a valid event is queued for `recovery.dlq` with its
   original bytes, topic, partition, offset and the reason. Effects, state and the outbox rows go into one store
   transaction, committed once per batch; only then are the Kafka offsets committed (asynchronously: one that is
   lost only redelivers events the ledger knows; the last ones are committed synchronously on closing).
4. The outbox publisher sends the batch's effects to `recovery.tasks` / `recovery.gestures` (the broker's
   acknowledgement is awaited before the next store commit, while the next batch is evaluated).
A crash anywhere redelivers the batch: the ledger knows its events, effect ids are deterministic, nothing repeats.

Ownership (principle 4): customers are keyed to partitions with Kafka's default partitioner, and each customer's
state is only touched by the engine of the customer's partition (an event keyed to another partition is forwarded
to its customer's). A scope event (an outage, keyed by its own id) touches customers of every partition: the
instance that reads it writes it to the store's scope log, and each partition's owner applies it to the
partition's customers at its place in that partition's event-time order (at an equal time, before the partition's
own events). So that no partition runs ahead of a scope event not logged yet, every instance publishes a watermark
per owned partition in the store (the event time before which that partition's scope events are all logged), and
a partition does not run past the lowest watermark of the other partitions, its own instance's and the others'
(an instance whose partitions stall for `barrier_wait_s` is gone on without until they catch up). Another
instance's partition read to its end holds back only the records the broker took after its owner last saw that end
(`ordering.Floor`): its owner, paused, may not have seen what came since. With the barrier, several instances give
exactly the effects of one.

The clocks (principle 1): event time, per partition; a partition read to its end follows wall time minus
`lateness_s`, so its deadlines fire without new events. The store's history, scope log and ledger are pruned below
the lowest clock of all the partitions.

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
