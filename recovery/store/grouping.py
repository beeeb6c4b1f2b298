"""How a SQL store sends its queued writes: grouped by declaration in an order with the same outcome as sending them
one by one, as each declaration's kind allows (statements.py says what each kind promises)."""

from __future__ import annotations

from typing import Any

from recovery.store.statements import GROUPED, KEYED, TRAILING, KeyedAdd, KeyedRemove, Params, Queued, Write


def grouped_writes(queued: list[Queued]) -> list[tuple[Write, list[Params]]]:
    """The queued writes as (declaration, rows) to send in this order: the ordered ones one by one, then the
    keyed ones collapsed, then the grouped ones, each declaration's rows in their queued order, then the trailing
    ones one by one."""
    ordered: list[tuple[Write, list[Params]]] = []
    groups: dict[Write, list[Params]] = {}
    keyed: list[Queued] = []
    trailing: list[tuple[Write, list[Params]]] = []
    for entry in queued:
        grouping = entry[0].grouping
        if grouping == GROUPED:
            groups.setdefault(entry[0], []).append(entry[1])
        elif grouping == KEYED:
            keyed.append(entry)
        elif grouping == TRAILING:
            trailing.append((entry[0], [entry[1]]))
        else:
            ordered.append((entry[0], [entry[1]]))
    return ordered + collapsed(keyed) + list(groups.items()) + trailing


def collapsed(queued: list[Queued]) -> list[tuple[Write, list[Params]]]:
    """Keyed adds and removes as one group of removes, then one group of adds, with the same outcome as in their
    queued order: a key removed at some point is removed, then added as by the first add after its last remove,
    if any; a key never removed gets its first add (or-ignore: a later one changes nothing)."""
    if not queued:
        return []
    removes: dict[tuple[KeyedAdd, Any], Queued] = {}
    adds: dict[tuple[KeyedAdd, Any], Queued] = {}
    for write, params in queued:
        if isinstance(write, KeyedRemove):
            key = (write.add, params[0])
            removes[key] = (write, params)
            adds.pop(key, None)  # an add before the remove is undone by it
        elif isinstance(write, KeyedAdd):
            key = (write, params[0])
            if key not in adds:
                adds[key] = (write, params)
    out: list[tuple[Write, list[Params]]] = []
    for chosen in (removes, adds):
        by_write: dict[Write, list[Params]] = {}
        for write, params in chosen.values():
            by_write.setdefault(write, []).append(params)
        out.extend(by_write.items())
    return out


def summed_rows(rows: list[Params], key: tuple[int, ...], added: tuple[int, ...]) -> list[Params]:
    """One row per key, its `added` columns the sums of the rows of that key (DO UPDATE may not touch one row twice
    in one statement), in the order of each key's first row."""
    out: dict[tuple[Any, ...], list[Any]] = {}
    for row in rows:
        found = out.get(k := tuple(row[i] for i in key))
        if found is None:
            out[k] = list(row)
        else:
            for i in added:
                found[i] += row[i]
    return list(out.values())


def write_names(queued: list[Queued]) -> str:
    """What the queued writes were, for a message."""
    return ", ".join(sorted({write.name for write, _ in queued}))


# ----------------------------------------------------------------------------------------------- engine state
