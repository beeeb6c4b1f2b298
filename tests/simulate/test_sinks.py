"""Where simulated traffic goes: `simulate.run` and its pacing, files and a real broker, through `recovery simulate`."""

from __future__ import annotations

import gc
import itertools
import json
import logging
import signal
import subprocess
import sys
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer

from recovery import simulate
from recovery.cli import main
from recovery.events import Event
from recovery.times import parse_time
from tests.conftest import ROOT, TopicFactory, free_ports

START = "2026-11-02T09:00:00Z"
T_START = parse_time(START)


def live(customers: int = 30, seed: int = 1, **kwargs: Any) -> list[dict[str, Any]]:
    kwargs.setdefault("rate", 20.0)
    kwargs.setdefault("duration_s", 50.0)
    kwargs.setdefault("start", T_START)
    return [event for _, event in simulate.traffic(customers, seed, **kwargs)]


def ts(event: dict[str, Any]) -> float:
    return Event.from_dict(event).ts


@pytest.fixture(autouse=True)
def _kafka_log_level() -> Iterator[None]:
    """`recovery simulate` quietens kafka-python's logger; keep that from leaking into other tests."""
    logger = logging.getLogger("kafka")
    level = logger.level
    yield
    logger.setLevel(level)


class TestPace:
    @pytest.mark.parametrize("time_scale", [1.0, 30.0])
    def test_rate_per_simulated_second(self, time_scale: float) -> None:
        stream = live(10, rate=25.0, duration_s=8.0, time_scale=time_scale)
        events = stream[10:]
        assert len(events) == 25 * 8
        per_second = Counter(int((ts(e) - T_START) / time_scale) for e in events)
        assert per_second == dict.fromkeys(range(8), 25)
        assert ts(events[1]) - ts(events[0]) == pytest.approx(time_scale / 25, abs=0.001)

    def test_run_sends_each_event_at_its_offset(self) -> None:
        now = [100.0]
        sent_at: list[float] = []

        class Recorder:
            def send(self, event: dict[str, Any]) -> None:
                sent_at.append(now[0])

            def close(self) -> None:
                pass

        def sleep(seconds: float) -> None:
            now[0] += seconds

        offsets = [0.0, 0.0, 0.5, 0.75, 3.0]
        events = [(o, {"type": "service.call"}) for o in offsets]
        sent = simulate.run(events, Recorder(), paced=True, monotonic=lambda: now[0], sleep=sleep)
        assert sent == {"service.call": 5}
        assert sent_at == pytest.approx([100 + o for o in offsets])

    def test_run_stops_cleanly_and_closes(self) -> None:
        closed = []

        class Recorder:
            def send(self, event: dict[str, Any]) -> None:
                pass

            def close(self) -> None:
                closed.append(True)

        calls = itertools.count()
        events = ((0.0, {"type": "survey.response"}) for _ in itertools.count())  # endless
        sent = simulate.run(events, Recorder(), paced=True, stopped=lambda: next(calls) >= 7)
        assert sent == {"survey.response": 7} and closed == [True]


class TestCommandLine:
    def test_out_with_duration_writes_the_batch_period(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        out = tmp_path / "sub" / "events.jsonl"
        assert main(["simulate", "--customers", "50", "--duration", "10d", "--seed", "5", "--out", str(out)]) == 0
        text = out.read_text(encoding="utf-8")
        assert text == "".join(simulate.generate_lines(50, 10, 5))
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"{len(text.splitlines())} events sent: ") and "customer.updated" in err

    def test_fast_aims_at_rate_times_duration(self, tmp_path: Path) -> None:
        out = tmp_path / "events.jsonl"
        args = ["simulate", "--customers", "200", "--rate", "10", "--duration", "10m", "--start", START, "--fast"]
        assert main([*args, "--out", str(out)]) == 0
        events = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        # Some customers are much busier than others: 200 of them keep the total within a few percent.
        assert 5_100 <= len(events) <= 6_900
        assert all(T_START <= ts(e) < T_START + 600 for e in events)
        assert {e["type"] for e in events} >= {"customer.updated", "service.call", "survey.response"}

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["--fast", "--out", "-"], "--fast needs a --duration"),
            (["--out", "x.jsonl", "--topic", "t"], "--bootstrap-servers and --topic are for Kafka"),
            (["--customers", "0", "--out", "-"], "--customers must be at least 1"),
            (["--rate", "0", "--out", "-"], "--rate and --time-scale must be > 0"),
        ],
    )
    def test_bad_arguments(self, args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
        assert main(["simulate", *args]) == 2
        assert message in capsys.readouterr().err

    @pytest.mark.parametrize("args", [["--start", "2026-11-02T09:00:00"], ["--duration", "soon"]])
    def test_bad_values_are_usage_errors(self, args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
        with pytest.raises(SystemExit) as exc:
            main(["simulate", "--out", "-", *args])
        assert exc.value.code == 2
        assert args[0] in capsys.readouterr().err

    def test_live_stream_ends_cleanly_on_sigterm(self) -> None:
        args = ["simulate", "--customers", "3", "--rate", "50", "--seed", "2", "--start", START, "--out", "-"]
        proc = subprocess.Popen(
            [sys.executable, "-m", "recovery.cli", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            head = [proc.stdout.readline() for _ in range(10)]
            proc.send_signal(signal.SIGTERM)
            rest, err = proc.communicate(timeout=30)
        finally:
            proc.kill()
        assert proc.returncode == 0, err
        lines = [*head, *rest.splitlines(keepends=True)]
        assert all(line.endswith("\n") for line in lines)
        stream = simulate.traffic(3, 2, rate=50.0, start=T_START)
        assert [json.loads(line) for line in lines] == [e for _, e in itertools.islice(stream, len(lines))]
        summary = err.strip().splitlines()[-1]
        sent = Counter(json.loads(line)["type"] for line in lines)
        assert summary == simulate.summary(sent) and summary.startswith(f"{len(lines)} events sent: "), err

    def test_unreachable_broker_is_one_line_and_exit_2(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.setattr(simulate.KafkaSink, "BOOTSTRAP_TIMEOUT_MS", 1_000)
        servers = f"127.0.0.1:{free_ports(1)[0]}"
        # kafka-python 3.0.12 leaves the socket of a refused connection attempt open: collect it here, quietly, rather
        # than let its ResourceWarning fail whichever test runs when the garbage collector finds it.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            code = main(["simulate", "--customers", "2", "--duration", "1", "--bootstrap-servers", servers])
            gc.collect()
        assert code == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1, err
        assert servers in err and "Traceback" not in err


def consume(bootstrap: str, topic: str, group: str, count: int, timeout_s: float = 30.0) -> list[tuple[bytes, bytes]]:
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest", enable_auto_commit=False
    )
    records: list[tuple[int, int, bytes, bytes]] = []
    deadline = time.monotonic() + timeout_s
    try:
        consumer.partitions_for_topic(topic)  # known before joining: one round (recovery/consumer/membership.py)
        consumer.subscribe([topic])
        while len(records) < count and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend((r.partition, r.offset, r.key, r.value) for r in batch)
    finally:
        consumer.close()
    return [(key, value) for _, _, key, value in sorted(records)]


def test_produces_to_kafka_keyed_by_customer_or_outage(
    kafka_bootstrap: str, topic_factory: TopicFactory, consumer_group: str, capsys: pytest.CaptureFixture[str]
) -> None:
    topic = topic_factory(partitions=1)
    args = ["--customers", "20", "--rate", "200", "--duration", "1", "--time-scale", "36000", "--seed", "3"]
    assert main(["simulate", *args, "--start", START, "--bootstrap-servers", kafka_bootstrap, "--topic", topic]) == 0
    expected = live(20, seed=3, rate=200.0, duration_s=1.0, time_scale=36000.0)
    assert len(expected) == 220
    assert capsys.readouterr().err.startswith("220 events sent: ")

    received = consume(kafka_bootstrap, topic, consumer_group, len(expected))
    assert [value.decode() for _, value in received] == [simulate.dumps(e) for e in expected]
    keys = [key.decode() for key, _ in received]
    assert keys == [e.get("customer_id") or e["data"]["outage_id"] for e in expected]
    assert any(e["type"] == "outage.started" for e in expected)
