"""recovery: a proactive customer-recovery rules engine."""

from __future__ import annotations

__version__ = "0.1.0"
