"""The engine: per-customer state, the event-time clock, and playbook evaluation."""

from recovery.engine.engine import Engine
from recovery.engine.stats import EngineStats

__all__ = ["Engine", "EngineStats"]
