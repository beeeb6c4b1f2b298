"""bench.peer's pure parts: reading the peer's closing line and the ratio of the rows."""

from __future__ import annotations

import pytest

from bench.drain import Result
from bench.peer import cells, parse_peer, ratio


def test_parse_peer_reads_the_closing_line() -> None:
    out = "some log\nquix-streams peer: 100288 events in 2.042 s = 49,112 events/s\n"
    assert parse_peer(out) == (100_288, 2.042)


def test_parse_peer_without_the_line_says_what_it_got() -> None:
    with pytest.raises(ValueError, match="printed no"):
        parse_peer("Traceback ...")


def test_ratio_and_cells() -> None:
    peer = Result("peer", events=1_000, seconds=1.0)
    ours = Result("ours", events=1_000, seconds=4.0)
    assert ratio(ours, peer) == "0.250"
    assert cells(ours, peer) == ["ours", "1,000", "4.000", "250", "0.250"]
    assert cells(peer, None)[-1] == "-"
    assert ratio(ours, Result("peer", note="skipped: no peer")) == "-"
    assert cells(Result("pg", note="skipped: no server"), peer) == ["pg", "skipped: no server"]
