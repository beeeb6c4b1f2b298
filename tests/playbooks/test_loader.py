"""`load_playbooks()`: every playbook under the given paths, and every problem as a located `Problem`."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from recovery.effects import Task
from recovery.engine import Engine
from recovery.events import Event
from recovery.exceptions import PlaybookError, Problem
from recovery.playbooks.loader import load_playbook, load_playbook_text, load_playbooks, load_playbooks_or_raise
from recovery.store import MemoryStore

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "invalid"

VALID = """\
id: {id}
trigger:
  event: service.call
actions:
  - task:
      queue: care-callback
      priority: P2
      due_in: 24h
      title: "Call from {{{{ customer.id }}}}"
      reason: "{{{{ customer.id }}}} called support."
"""

PlaybookFactory = Callable[..., Path]


@pytest.fixture
def playbook_factory(tmp_path: Path) -> PlaybookFactory:
    """Writes a playbook file under tmp_path: a valid one with `id`, or the `text` given."""

    def make(name: str = "p.yaml", id: str = "repeat-caller", text: str | None = None) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(VALID.format(id=id) if text is None else text, encoding="utf-8")
        return path

    return make


def lines(problems: list[Problem]) -> list[str]:
    return [str(p) for p in problems]


class TestShippedRules:
    def test_all_load_without_problems(self) -> None:
        playbooks, problems = load_playbooks([RULES])
        assert problems == []
        assert sorted(pb.id for pb in playbooks) == [
            "cancellation-save",
            "complaint-unresolved",
            "detractor-followup",
            "outage-recovery",
            "repeat-caller",
        ]

    def test_files_are_read_in_name_order(self) -> None:
        playbooks, _ = load_playbooks([RULES])
        assert [Path(pb.file).name for pb in playbooks] == sorted(Path(pb.file).name for pb in playbooks)

    def test_triggers_compile_to_their_kind(self) -> None:
        by_id = {pb.id: pb for pb in load_playbooks_or_raise([RULES])}
        event = by_id["repeat-caller"]
        assert (event.kind, event.event_type, event.key) == ("event", "service.call", None)
        assert event.cooldown_s == 14 * 86400
        seq = by_id["outage-recovery"]
        assert (seq.kind, seq.first_type, seq.event_type, seq.key, seq.within_s) == (
            "sequence",
            "outage.started",
            "outage.resolved",
            "outage_id",
            30 * 86400,
        )
        absence = by_id["complaint-unresolved"]
        assert (absence.kind, absence.event_type, absence.end_type, absence.key, absence.within_s) == (
            "absence",
            "complaint.opened",
            "complaint.resolved",
            "complaint_id",
            48 * 3600,
        )
        assert absence.cooldown_s is None

    def test_windows_decide_the_history_kept(self) -> None:
        by_id = {pb.id: pb for pb in load_playbooks_or_raise([RULES])}
        assert by_id["repeat-caller"].windows == {("service.call", 7 * 86400)}
        assert by_id["repeat-caller"].horizon_s == 7 * 86400
        assert by_id["outage-recovery"].history_types == {"outage.started"}


_WINDOW = "had('service.call', 14d)"
_GESTURE = f'  - gesture: {{type: apology, reason: sorry, when: "{_WINDOW}"}}\n'
WINDOW_PLACES: dict[str, Callable[[str], str]] = {
    "let": lambda text: text + f'let:\n  called: "{_WINDOW}"\n',
    "when": lambda text: text + f'when: "{_WINDOW}"\n',
    "title": lambda text: text.replace('title: "Call', f'title: "{{{{ if({_WINDOW}, 1, 2) }}}} Call'),
    "customers.where": lambda text: text + f'customers:\n  where: "{_WINDOW}"\n',
    "priority case": lambda text: text.replace(
        "priority: P2", f'priority: [{{when: "{_WINDOW}", then: P2}}, {{then: P3}}]'
    ),
    "task when": lambda text: text.replace("priority: P2", f'priority: P2\n      when: "{_WINDOW}"'),
    "gesture when": lambda text: text + _GESTURE,
}


@pytest.mark.parametrize("place", list(WINDOW_PLACES))
def test_every_window_decides_the_history_kept(playbook_factory: PlaybookFactory, place: str) -> None:
    # The engine keeps the history of the windows listed in `windows` only: a window missing there always
    # counts zero at run time. Today the windows of customers.where and of action conditions are missing.
    text = VALID.format(id="detractor-followup").replace("service.call", "survey.response")
    (pb,) = load_playbooks_or_raise([playbook_factory(text=WINDOW_PLACES[place](text))])
    assert pb.windows == {("service.call", 14 * 86400)}
    assert "service.call" in pb.history_types


class TestProblems:
    def test_one_problem_per_mistake_with_file_line_and_column(self) -> None:
        path = FIXTURES / "unknown_field.yaml"
        playbooks, problems = load_playbooks([path])
        assert playbooks == []
        assert [(p.file, p.line, p.column) for p in problems] == [(str(path), 7, 33), (str(path), 12, 26)]
        assert problems[0].message.startswith("unknown data field 'resaon' for service.call")

    def test_a_bad_file_does_not_hide_the_good_ones(self, playbook_factory: PlaybookFactory) -> None:
        good = playbook_factory("a.yaml", id="repeat-caller")
        bad = playbook_factory("b.yaml", text=VALID.format(id="detractor-followup").replace("24h", "24"))
        playbooks, problems = load_playbooks([good.parent])
        assert [pb.id for pb in playbooks] == ["repeat-caller"]
        assert lines(problems) == [
            f"{bad}:8:15: actions.0.task.due_in: a duration is written with a unit, e.g. 48h, 7d or 2h30m (got 24)"
        ]

    def test_structure_is_checked_before_expressions(self, playbook_factory: PlaybookFactory) -> None:
        # A structural problem stops the file there: its expressions are not checked until it is fixed.
        text = VALID.format(id="x").replace("service.call\n", "service.call\nwhen: cuont(1)\n") + "foo: 1\n"
        path = playbook_factory(text=text)
        _, problems = load_playbooks([path])
        assert lines(problems) == [
            f"{path}:12:1: unknown key 'foo'; expected one of: id, version, description, enabled, customers, "
            "trigger, let, when, cooldown, inhibited_by, mode, holdout, holdout_salt, actions"
        ]

    def test_load_playbook_raises_with_every_problem(self) -> None:
        with pytest.raises(PlaybookError) as caught:
            load_playbook(FIXTURES / "unknown_key.yaml")
        assert [(p.line, p.column) for p in caught.value.problems] == [(10, 7), (10, 7)]
        assert str(caught.value) == "\n".join(lines(caught.value.problems))

    def test_load_playbooks_or_raise(self, playbook_factory: PlaybookFactory) -> None:
        with pytest.raises(PlaybookError) as caught:
            load_playbooks_or_raise([FIXTURES / "duplicate_key.yaml"])
        assert lines(caught.value.problems) == [
            f"{FIXTURES / 'duplicate_key.yaml'}:14:7: duplicate key 'due_in' (first at line 12)"
        ]
        assert [pb.id for pb in load_playbooks_or_raise([playbook_factory()])] == ["repeat-caller"]

    def test_unreadable_file(self, playbook_factory: PlaybookFactory) -> None:
        path = playbook_factory()
        path.write_bytes(b"\xff\xfe id: x\n")
        _, problems = load_playbooks([path])
        assert len(problems) == 1
        assert str(problems[0]).startswith(f"{path}:1:1: cannot read the file: 'utf-8' codec can't decode")

    def test_alias_bomb_is_refused(self, playbook_factory: PlaybookFactory) -> None:
        rows = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
        rows += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 8)]
        path = playbook_factory(text="\n".join(rows) + "\n")
        _, problems = load_playbooks([path])
        assert len(problems) == 1
        assert problems[0].message == "document is too large (more than 100000 values, or aliases nest too deeply)"


class TestDuplicateIds:
    def test_the_second_file_read_is_reported(self) -> None:
        folder = FIXTURES / "duplicate_ids"
        playbooks, problems = load_playbooks([folder])
        assert [(pb.id, pb.version, Path(pb.file).name) for pb in playbooks] == [("repeat-caller", 1, "a.yaml")]
        assert lines(problems) == [
            f"{folder / 'b.yaml'}:2:5: duplicate playbook id 'repeat-caller' (also in {folder / 'a.yaml'})"
        ]

    def test_across_paths_and_subfolders(self, playbook_factory: PlaybookFactory) -> None:
        first = playbook_factory("team-a/p.yaml", id="same")
        second = playbook_factory("team-b/nested/q.yml", id="same")
        playbooks, problems = load_playbooks([second.parent.parent, first])
        assert [pb.file for pb in playbooks] == [str(second)]
        assert lines(problems) == [f"{first}:1:5: duplicate playbook id 'same' (also in {second})"]

    def test_a_disabled_playbook_still_holds_its_id(self, playbook_factory: PlaybookFactory) -> None:
        playbook_factory("a.yaml", text=VALID.format(id="same") + "enabled: false\n")
        playbook_factory("b.yaml", id="same")
        playbooks, problems = load_playbooks([playbook_factory("c.yaml", id="other").parent])
        assert [(pb.id, pb.source.enabled if pb.source else None) for pb in playbooks] == [
            ("same", False),
            ("other", True),
        ]
        assert [p.message for p in problems] == [f"duplicate playbook id 'same' (also in {playbooks[0].file})"]


class TestWhatIsFound:
    def test_empty_directory(self, tmp_path: Path) -> None:
        playbooks, problems = load_playbooks([tmp_path])
        assert playbooks == []
        assert lines(problems) == [f"{tmp_path}:1:1: no playbook files (*.yaml) found here"]

    def test_directory_with_only_test_files(self, playbook_factory: PlaybookFactory) -> None:
        path = playbook_factory("p.test.yaml", text="playbook: repeat-caller\ntests: []\n")
        playbooks, problems = load_playbooks([path.parent])
        assert playbooks == []
        assert lines(problems) == [f"{path.parent}:1:1: no playbook files (*.yaml) found here"]

    def test_test_files_and_other_files_are_skipped(self, playbook_factory: PlaybookFactory) -> None:
        playbook_factory("p.yaml")
        playbook_factory("p.test.yaml", text="playbook: repeat-caller\ntests: []\n")
        playbook_factory("README.md", text="# not a playbook\n")
        playbook_factory("notes.txt", text="id: [\n")
        playbooks, problems = load_playbooks([playbook_factory().parent])
        assert ([pb.id for pb in playbooks], problems) == (["repeat-caller"], [])

    def test_missing_path(self, tmp_path: Path) -> None:
        missing = tmp_path / "nope"
        assert lines(load_playbooks([missing])[1]) == [f"{missing}:1:1: no such file or directory"]

    def test_no_paths(self) -> None:
        assert load_playbooks([]) == ([], [])


class TestDocumentShape:
    @pytest.mark.parametrize(
        ("text", "message"),
        [
            pytest.param("- id: repeat-caller\n- id: other\n", "a playbook is a mapping of keys", id="list"),
            pytest.param("repeat-caller\n", "a playbook is a mapping of keys", id="scalar"),
            pytest.param("", "the file is empty", id="empty"),
            pytest.param("# nothing but a comment\n", "the file is empty", id="comment-only"),
        ],
    )
    def test_not_a_mapping(self, playbook_factory: PlaybookFactory, text: str, message: str) -> None:
        path = playbook_factory(text=text)
        playbooks, problems = load_playbooks([path])
        assert playbooks == []
        assert [(p.file, p.line, p.column) for p in problems] == [(str(path), 1, 1)]
        assert problems[0].message.startswith(message)

    def test_list_message_names_the_keys(self, playbook_factory: PlaybookFactory) -> None:
        _, problems = load_playbooks([playbook_factory(text="- a\n")])
        assert problems[0].message == "a playbook is a mapping of keys (id, trigger, actions...)"

    def test_invalid_yaml_points_at_the_error(self, playbook_factory: PlaybookFactory) -> None:
        path = playbook_factory(text="id: repeat-caller\ntrigger: [service.call\nactions: []\n")
        _, problems = load_playbooks([path])
        assert [(p.line, p.column) for p in problems] == [(3, 8)]
        assert problems[0].message.startswith("invalid YAML: ")

    def test_merge_keys_pull_nothing_in(self, playbook_factory: PlaybookFactory) -> None:
        # source.py: "merge keys are ordinary (unknown) keys". recovery refuses them, but with
        # `a key must be a plain word`, which does not name the key the author wrote.
        text = VALID.format(id="x") + "base: &base {queue: care}\n<<: *base\n"
        path = playbook_factory(text=text)
        _, problems = load_playbooks([path])
        merge = [p for p in problems if "'<<'" in p.message]
        assert [(p.line, p.column) for p in merge] == [(12, 1)]


class TestDepth:
    """YAML nests at most MAX_DEPTH levels of mappings and lists: deeper is a located problem, never a crash."""

    TOO_DEEP = "nested too deeply: at most 64 levels of mappings and lists"

    @pytest.mark.parametrize(
        ("opener", "closer"),
        [pytest.param("[", "]", id="lists"), pytest.param("{a: ", "}", id="mappings")],
    )
    def test_nesting_past_the_limit_is_refused_where_it_starts(
        self, playbook_factory: PlaybookFactory, opener: str, closer: str
    ) -> None:
        path = playbook_factory(text=VALID.format(id="deep") + f"description: {opener * 500}x{closer * 500}\n")
        playbooks, problems = load_playbooks([path])
        # the root mapping is level 1, the outermost bracket level 2: level 65 opens at bracket 64
        assert (playbooks, lines(problems)) == ([], [f"{path}:11:{14 + 63 * len(opener)}: {self.TOO_DEEP}"])

    def test_nesting_up_to_the_limit_is_read(self, playbook_factory: PlaybookFactory) -> None:
        path = playbook_factory(text=VALID.format(id="deep") + f"description: {'[' * 63}x{']' * 63}\n")
        _, problems = load_playbooks([path])
        assert lines(problems) == [f"{path}:11:14: description: Input should be a valid string"]

    def test_aliases_count_where_they_are_used(self, playbook_factory: PlaybookFactory) -> None:
        text = VALID.format(id="deep") + f"base: &b {'[' * 40}x{']' * 40}\nmore: {'[' * 30}*b{']' * 30}\n"
        path = playbook_factory(text=text)
        _, problems = load_playbooks([path])
        assert [p.message for p in problems] == [self.TOO_DEEP]

    def test_an_alias_inside_itself_is_refused(self, playbook_factory: PlaybookFactory) -> None:
        path = playbook_factory(text=VALID.format(id="loop") + "description: &a [x, *a]\n")
        _, problems = load_playbooks([path])
        assert lines(problems) == [f"{path}:11:14: an alias refers to the mapping or list that holds it"]


def _let_chain(n: int) -> str:
    """`n` let values, each the one before plus 1: v0 is 2 levels deep (`+`, count()), v1 4, vK 2K + 2."""
    return "let:\n  v0: count('service.call', 7d) + 0\n" + "".join(f"  v{k}: v{k - 1} + 1\n" for k in range(1, n))


class TestLetChains:
    """A let value is evaluated where it is used: its levels count in the expression that names it."""

    LET_TOO_DEEP = (
        "expression nests too deeply with the let values it uses ('v{k}' adds {depth} levels): at most 64 levels in all"
    )

    def test_a_long_chain_is_refused_at_each_let_that_goes_too_deep(self, playbook_factory: PlaybookFactory) -> None:
        path = playbook_factory(text=VALID.format(id="lets") + _let_chain(600) + "when: v599 > 0\n")
        playbooks, problems = load_playbooks([path])
        assert playbooks == []
        # v31 is 64 levels deep: v32 names it one level down. A let refused counts 1 level: v33 is 3 deep, v63 63
        first = 10 + 1 + 1 + 32  # the lines before `let:`, `let:`, v0, then v1..v32
        assert lines(problems)[:2] == [
            f"{path}:{first}:8: {self.LET_TOO_DEEP.format(k=31, depth=64)}",
            f"{path}:{first + 32}:8: {self.LET_TOO_DEEP.format(k=63, depth=63)}",
        ]
        assert len(problems) == 18  # v32, v64, ... v576
        assert {p.message.split(" (")[0] for p in problems} == {
            "expression nests too deeply with the let values it uses"
        }

    def test_the_deepest_chain_allowed_runs_in_few_frames(self, playbook_factory: PlaybookFactory) -> None:
        text = VALID.format(id="lets").replace("called support.", "called support: {{ v30 }}.")
        path = playbook_factory(text=text + _let_chain(32) + "when: v30 > 0\n")  # 2 + 62 levels
        (pb,) = load_playbooks_or_raise([path])
        assert (pb.lets["v30"].depth, pb.lets["v31"].depth) == (62, 64)
        engine = Engine([pb], MemoryStore())
        call = Event.from_dict(
            {"id": "c1", "type": "service.call", "occurred_at": "2026-11-02T09:00:00Z", "customer_id": "C1"}
        )
        frames, frame = 0, sys._getframe()
        while frame is not None:
            frames, frame = frames + 1, frame.f_back
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(frames + 300)  # whatever calls the engine, 300 frames are enough for it
        try:
            (task,) = engine.process(call)
        finally:
            sys.setrecursionlimit(limit)
        assert isinstance(task, Task)
        assert task.reason == "C1 called support: 31."


class TestNumbers:
    """Numbers in a YAML file are finite 64-bit floats, whole numbers exactly so (at most 2**53 either way)."""

    TOO_LARGE = "whole number too large: at most 9007199254740992 (2**53) either way"

    @pytest.mark.parametrize(
        ("line", "column", "message"),
        [
            ("version: 9007199254740993", 10, TOO_LARGE),
            ("version: " + "1" * 1500, 10, TOO_LARGE),
            ("version: " + "1" * 5000, 10, TOO_LARGE),  # past Python's 4300 digits of int()
            ("version: -0x20000000000001", 10, TOO_LARGE),
            ("description: [1.0e+999]", 15, "not a finite number"),
            ("description: {x: -.inf}", 18, "not a finite number"),
            ("description: .NaN", 14, "not a finite number"),
        ],
    )
    def test_out_of_range_is_refused_where_written(
        self, playbook_factory: PlaybookFactory, line: str, column: int, message: str
    ) -> None:
        path = playbook_factory(text=VALID.format(id="numbers") + line + "\n")
        _, problems = load_playbooks([path])
        assert lines(problems) == [f"{path}:11:{column}: {message}"]

    def test_the_largest_are_read(self, playbook_factory: PlaybookFactory) -> None:
        path = playbook_factory(text=VALID.format(id="numbers") + "version: 9007199254740992\n")
        (pb,) = load_playbooks_or_raise([path])
        assert pb.version == 2**53

    def test_a_version_written_as_text_is_bounded_too(self, playbook_factory: PlaybookFactory) -> None:
        path = playbook_factory(text=VALID.format(id="numbers") + 'version: "9007199254740993"\n')
        _, problems = load_playbooks([path])
        assert lines(problems) == [
            f"{path}:11:10: version: Input should be less than or equal to 9007199254740992 (got '9007199254740993')"
        ]

    def test_a_cap_written_as_text_is_finite(self) -> None:
        text = VALID.format(id="numbers") + '  - gesture: {type: apology, amount: "1", cap: "1e999", reason: r}\n'
        with pytest.raises(PlaybookError) as caught:
            load_playbook_text(text, "p.yaml")
        assert [str(p) for p in caught.value.problems] == [
            "p.yaml:11:48: actions.1.gesture.cap: Input should be a finite number (got '1e999')"
        ]


def test_a_special_character_is_invalid_yaml() -> None:
    with pytest.raises(PlaybookError) as caught:
        load_playbook_text("\x08", "p.yaml")
    assert [str(p) for p in caught.value.problems] == [
        'p.yaml:1:1: invalid YAML: unacceptable character #x0008: special characters are not allowed\n  in "<unicode '
        'string>", position 0'
    ]


class TestInhibitedBy:
    def test_ids_and_look_backs_are_compiled(self, playbook_factory: PlaybookFactory) -> None:
        playbook_factory("a.yaml", id="a")
        playbook_factory("b.yaml", id="b")
        text = VALID.format(id="c") + "inhibited_by: [a, {playbook: b, within: 2d}]\n"
        playbook_factory("c.yaml", text=text)
        one = VALID.format(id="d") + "inhibited_by: a\n"  # one id, without a list
        path = playbook_factory("d.yaml", text=one)
        playbooks, problems = load_playbooks([path.parent])
        assert problems == []
        by_id = {pb.id: pb for pb in playbooks}
        assert by_id["c"].inhibited_by == (("a", None), ("b", 2 * 86400.0))
        assert by_id["d"].inhibited_by == (("a", None),)
        assert by_id["a"].inhibited_by == ()

    def test_an_unknown_playbook_is_a_located_problem(self, playbook_factory: PlaybookFactory) -> None:
        playbook_factory("a.yaml", id="a")
        text = VALID.format(id="c") + "inhibited_by:\n  - a\n  - outage-recovry\n"
        path = playbook_factory("c.yaml", text=text)
        _, problems = load_playbooks([path.parent])
        assert lines(problems) == [f"{path}:13:5: no playbook 'outage-recovry' here (known: a, c)"]

    @pytest.mark.parametrize(
        ("extra", "message"),
        [
            ("inhibited_by: [c]", "11:16: a playbook cannot mute itself ('c'): use cooldown"),
            ("inhibited_by: [a, a]", "11:19: 'a' is named twice"),
            ("inhibited_by: [{playbook: a, within: soon}]", "11:38: inhibited_by.0.within: 'soon' is not a duration"),
            ("inhibited_by: [{playbook: a, whithin: 2d}]", "11:30: unknown key 'whithin' (did you mean 'within'?)"),
        ],
    )
    def test_mistakes_are_located(self, playbook_factory: PlaybookFactory, extra: str, message: str) -> None:
        playbook_factory("a.yaml", id="a")
        path = playbook_factory("c.yaml", text=VALID.format(id="c") + extra + "\n")
        _, problems = load_playbooks([path.parent])
        assert len(problems) == 1 and str(problems[0]).startswith(f"{path}:{message}"), lines(problems)
