"""Where simulated events go (a file or a Kafka topic), and `run`, which sends them, paced or as fast as it can."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Protocol, TextIO

if TYPE_CHECKING:
    from recovery.config import Settings
from recovery.simulate.model import BrokerError, dumps

logger = logging.getLogger(__name__)


class Sink(Protocol):
    def send(self, event: dict[str, Any]) -> None: ...

    def close(self) -> None:
        """Flush what was sent and release the destination."""


class FileSink:
    """JSON lines to a text stream; `flush_each` makes a live stream readable as it grows (`tail -f`)."""

    def __init__(self, out: TextIO, *, flush_each: bool = False, owned: bool = False) -> None:
        self._out = out
        self._flush_each = flush_each
        self._owned = owned

    @classmethod
    def to_path(cls, path: Path, *, flush_each: bool = False) -> FileSink:
        """A sink writing (UTF-8, `\\n` line ends) to a new `path`, creating its folder; `close` closes the file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        return cls(path.open("w", encoding="utf-8", newline="\n"), flush_each=flush_each, owned=True)

    def send(self, event: dict[str, Any]) -> None:
        self._out.write(dumps(event) + "\n")
        if self._flush_each:
            self._out.flush()

    def close(self) -> None:
        if self._owned:
            self._out.close()
        else:
            self._out.flush()


class KafkaSink:
    """Produces each event to `topic` (acks=all), keyed by its customer id, or its outage id when it has none.

    `config` is passed to `kafka.KafkaProducer` as is (security settings). A broker that cannot be reached, or
    that refuses an event, raises `BrokerError`.
    """

    BOOTSTRAP_TIMEOUT_MS = 15_000

    def __init__(self, bootstrap_servers: str, topic: str, **config: Any) -> None:
        from kafka import KafkaProducer
        from kafka.errors import KafkaError

        self._servers = bootstrap_servers
        self._topic = topic
        self._kafka_error: type[Exception] = KafkaError
        self._failure: BaseException | None = None
        # A producer that fails to bootstrap raises from its constructor, leaving its client's sockets open.
        clients: list[Any] = []

        def client(**kwargs: Any) -> Any:
            clients.append(KafkaProducer.DEFAULT_CONFIG["kafka_client"](**kwargs))
            return clients[-1]

        try:
            self._producer = KafkaProducer(
                bootstrap_servers=bootstrap_servers.split(","),
                acks="all",
                linger_ms=5,
                bootstrap_timeout_ms=self.BOOTSTRAP_TIMEOUT_MS,
                kafka_client=client,
                **config,
            )
        except KafkaError:
            for made in clients:
                made.close()
            raise BrokerError(
                f"cannot reach a Kafka broker at {bootstrap_servers} within {self.BOOTSTRAP_TIMEOUT_MS / 1000:g} s"
                " (--bootstrap-servers, or the setting kafka_bootstrap_servers: RECOVERY_KAFKA_BOOTSTRAP_SERVERS)"
            ) from None

    @classmethod
    def from_settings(
        cls, settings: Settings, bootstrap_servers: str | None = None, topic: str | None = None
    ) -> KafkaSink:
        """A sink to `settings`' broker (with its security settings) and events topic, unless overridden."""
        config = settings.kafka_config()
        del config["bootstrap_servers"]
        return cls(bootstrap_servers or settings.kafka_bootstrap_servers, topic or settings.topic_events, **config)

    def _error(self, exc: BaseException) -> BrokerError:
        return BrokerError(f"Kafka at {self._servers} did not take the events for topic {self._topic}: {exc}")

    def _failed(self, exc: BaseException) -> None:
        self._failure = self._failure or exc

    def send(self, event: dict[str, Any]) -> None:
        if self._failure is not None:
            raise self._error(self._failure)
        key = event.get("customer_id") or event["data"].get("outage_id") or event["id"]
        try:
            future = self._producer.send(self._topic, key=key.encode(), value=dumps(event).encode())
        except self._kafka_error as exc:
            raise self._error(exc) from None
        future.add_errback(self._failed)

    def close(self) -> None:
        try:
            self._producer.flush(timeout=30)
        except self._kafka_error as exc:
            self._failed(exc)
        finally:
            self._producer.close(timeout=5)
        if self._failure is not None:
            raise self._error(self._failure)


def run(
    events: Iterable[tuple[float, dict[str, Any]]],
    sink: Sink,
    *,
    paced: bool,
    stopped: Callable[[], bool] = lambda: False,
    monotonic: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Counter[str]:
    """Send `events` (offset, event) to `sink`, then close it; returns the events sent per type.

    `paced`: each event is sent `offset` real seconds after the run began (`live_events`); else as fast as the
    sink takes them. `stopped` is asked before each event and while waiting (at least every 0.1 s): once it is
    true the run ends cleanly, closing (flushing) the sink.
    """
    sent: Counter[str] = Counter()
    t0 = monotonic()
    try:
        for offset, event in events:
            while paced and (wait := t0 + offset - monotonic()) > 0 and not stopped():
                sleep(min(wait, 0.1))
            if stopped():
                break
            sink.send(event)
            sent[event["type"]] += 1
    finally:
        sink.close()
    return sent


@contextmanager
def stop_on_signals() -> Iterator[Callable[[], bool]]:
    """Inside, SIGINT (Ctrl-C) and SIGTERM ask for a clean stop (the yielded callable turns true) instead of
    killing the process; a second one raises `KeyboardInterrupt`. Outside the main thread, signals are left alone.
    """
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        logger.info("stopping", extra={"signal": signal.Signals(signum).name})
        stop.set()

    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, on_signal)
    try:
        yield stop.is_set
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def summary(sent: Counter[str]) -> str:
    """One line: the total and the count per type, e.g. `120 events sent: customer.updated 20, service.call 50`."""
    per_type = ", ".join(f"{kind} {n}" for kind, n in sorted(sent.items()))
    return f"{sum(sent.values())} events sent" + (f": {per_type}" if per_type else "")
