"""Process tuning for the commands that evaluate streams (`serve`, `replay`): Python's cyclic garbage collector.

The engine holds long-lived state (customers' recent history, profiles, cooldowns) and makes little cyclic
garbage: what it drops is freed by reference counting. With Python's defaults (a young generation of 700
objects) the collector runs every few hundred allocations, and each time the middle generation overflows it may
scan the whole heap, the engine's state included: work that grows with the state and finds next to nothing.

`tune_gc` therefore
- collects once, then freezes what start-up built (modules, compiled playbooks, schemas), so that no later
  collection scans it again; whatever of it is dropped later is still freed by reference counting;
- raises the young generation's threshold (`gen0`), so collections run about 15 times less often. The older
  generations keep their thresholds, and Python's own rule still holds: a full collection waits until a quarter
  of the heap is new.

Cyclic garbage is still collected, a little later. `gen0=0` leaves the thresholds as they are (the freeze
still happens).
"""

from __future__ import annotations

import gc

DEFAULT_GC_GEN0_THRESHOLD = 10_000


def tune_gc(gen0: int = DEFAULT_GC_GEN0_THRESHOLD) -> tuple[int, int, int]:
    """Freeze the start-up heap and set the young generation's threshold; returns the thresholds now in force."""
    if gen0 < 0:
        raise ValueError(f"gen0 threshold must be 0 (leave as is) or more, got {gen0}")
    gc.collect()
    gc.freeze()
    if gen0:
        _, gen1, gen2 = gc.get_threshold()
        gc.set_threshold(gen0, gen1, gen2)
    threshold: tuple[int, int, int] = gc.get_threshold()
    return threshold
