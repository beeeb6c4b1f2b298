from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

import recovery.replay
from recovery import cli
from recovery.config import ConfigError, Settings
from recovery.runtime import DEFAULT_GC_GEN0_THRESHOLD, tune_gc
from tests.conftest import ROOT


@pytest.fixture
def gc_state() -> Iterator[None]:
    """tune_gc changes the whole process: put the collector back as it was."""
    threshold = gc.get_threshold()
    frozen = gc.get_freeze_count()
    yield
    gc.set_threshold(*threshold)
    if frozen == 0:
        gc.unfreeze()


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def test_tune_gc_freezes_the_start_up_heap_and_raises_the_young_threshold(gc_state: None) -> None:
    gc.unfreeze()
    _, gen1, gen2 = gc.get_threshold()
    assert tune_gc(12_345) == (12_345, gen1, gen2)
    assert gc.get_threshold() == (12_345, gen1, gen2)
    assert gc.get_freeze_count() > 1000  # modules, classes, this test's own objects
    # Cyclic garbage made afterwards is still collected.
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    del a, b
    assert gc.collect() >= 2


def test_zero_keeps_the_thresholds_and_negative_is_refused(gc_state: None) -> None:
    before = gc.get_threshold()
    assert tune_gc(0) == before
    with pytest.raises(ValueError, match="gen0 threshold"):
        tune_gc(-1)


def test_the_setting_defaults_to_the_tuned_threshold_and_is_checked() -> None:
    assert Settings.load(environ={}).gc_gen0_threshold == DEFAULT_GC_GEN0_THRESHOLD
    assert Settings.load(environ={"RECOVERY_GC_GEN0_THRESHOLD": "0"}).gc_gen0_threshold == 0
    with pytest.raises(ConfigError, match=r"setting 'gc_gen0_threshold' \(RECOVERY_GC_GEN0_THRESHOLD\) has value '-5'"):
        Settings.load(environ={"RECOVERY_GC_GEN0_THRESHOLD": "-5"})


def test_replay_runs_with_the_tuned_collector(
    gc_state: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    gc.set_threshold(700, 10, 10)
    events = tmp_path / "events.jsonl"
    events.write_text(
        '{"id": "e1", "type": "service.call", "occurred_at": "2026-01-01T00:00:00Z", "customer_id": "C-1"}\n'
    )
    seen: list[tuple[int, int, int]] = []
    real_replay = recovery.replay.replay

    def spy(*args: object, **kwargs: object) -> object:
        seen.append(gc.get_threshold())
        return real_replay(*args, **kwargs)

    monkeypatch.setattr("recovery.replay.replay", spy)
    assert cli.main(["replay", "--rules", str(ROOT / "rules"), str(events)]) == 0
    assert seen == [(DEFAULT_GC_GEN0_THRESHOLD, 10, 10)]
    assert capsys.readouterr().out == ""  # one call: no playbook fires
