"""The catalog: what the suites declare about their controls, read from the suites themselves.

Each fact about a control is written once, on the control in `suites/`: its id and severity
(and the AWS reads it makes) on its `control` marker, its cadences and categories as markers.
This module reads those declarations without importing the suites (a light scan of their
source), so that a config's waivers and attestations can be checked before pytest collects
anything, and naming a control outside the current selection is still recognised. The cadences
and categories themselves are the markers of `markers.ini`.
"""

from __future__ import annotations

import ast
import configparser
import functools
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# PREFIX-FAMILY-NN: EA- is the built-in controls' prefix; a site's own controls take one of their own
ID_PATTERN = re.compile(r"^[A-Z][A-Z0-9]{1,9}-[A-Z0-9]+-\d{2}$")
BUILTIN_PREFIX = "EA"
READ_NAME = re.compile(r"^[a-z0-9-]+:[A-Z][A-Za-z0-9]+$")  # service:Operation, botocore's names
SEVERITIES = ("P1", "P2", "P3", "P4")
SEVERITY_RANK = {"P1": 1, "P2": 2, "P3": 3, "P4": 4}
MARKERS_FILE = Path(__file__).parent.parent / "markers.ini"
MANUAL_FAMILY = "MAN"  # EA-MAN-NN: done by a person and proven by an attestation

OUTCOMES = ("passed", "warned", "failed", "error", "skipped", "waived")
FAILING = ("failed", "error")
# The same outcomes, worst first: the order the HTML report counts, sorts and filters them in.
WORST_FIRST = FAILING + ("warned", "waived", "skipped", "passed")

# The seed's incident table (operational-procedures.md, "Incident Classification").
INCIDENT_LEVELS = {
    "P1": {"name": "Critical", "description": "Complete service outage", "response": "5 minutes", "escalation": "All hands"},
    "P2": {"name": "High", "description": "Significant degradation", "response": "15 minutes", "escalation": "Senior team"},
    "P3": {"name": "Medium", "description": "Minor issues", "response": "1 hour", "escalation": "Team lead"},
    "P4": {"name": "Low", "description": "Cosmetic/non-urgent", "response": "4 hours", "escalation": "Standard"},
}


def markers() -> dict[str, str]:
    """Every marker edgeaudit registers, with its description (markers.ini)."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(MARKERS_FILE, encoding="utf-8")
    return dict(parser["markers"])


def _kind(kind: str) -> tuple[str, ...]:
    return tuple(name for name, description in markers().items() if description.startswith(f"{kind}:"))


CADENCES = _kind("cadence")
CATEGORIES = _kind("category")


@dataclass(frozen=True)
class Declared:
    """A control as its suites module declares it."""

    id: str
    severity: str
    markers: frozenset[str]       # the other markers on it: cadences and categories
    reads: tuple[str, ...] = ()   # "service:Operation" reads of the target's own resources
    frameworks: tuple[tuple[str, str], ...] = ()  # (framework id, its requirement ids), as declared

    @property
    def cadences(self) -> tuple[str, ...]:
        return tuple(c for c in CADENCES if c in self.markers)


_suites: list[tuple[Path, ...]] = []  # the folders of the runs under way in this process, innermost last


def builtin_folder() -> Path:
    """The controls that come with the package: `edgeaudit.suites` (in a checkout, its top-level
    suites/), found without importing them."""
    spec = importlib.util.find_spec("edgeaudit.suites")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations))).resolve()
    return Path(__file__).resolve().parents[2] / "suites"  # a checkout on sys.path, not installed


def use_suites(*folders: Path) -> None:
    """The folders of controls of the run that starts: the built-in ones and the user's own."""
    _suites.append(tuple(dict.fromkeys(folder.resolve() for folder in folders)))


def done_with_suites() -> None:
    """The run that called use_suites() last has ended."""
    if _suites:
        _suites.pop()


def suites_folders() -> tuple[Path, ...]:
    """The folders of controls of the current run; else the built-in ones and ./suites."""
    if _suites:
        return _suites[-1]
    here = Path.cwd() / "suites"
    return tuple(dict.fromkeys([builtin_folder(), *([here.resolve()] if here.is_dir() else [])]))


def suites_folder() -> Path:
    """The first folder of controls of the current run: the built-in one (edgeaudit.suites),
    unless the run leaves the built-in controls out."""
    return suites_folders()[0]


def _modules(folders: tuple[Path, ...]) -> tuple[tuple[Path, int], ...]:
    """The control modules of these folders, each with its modification time."""
    paths = dict.fromkeys(path for folder in folders for path in sorted(folder.resolve().rglob("test_*.py")))
    return tuple((path, path.stat().st_mtime_ns) for path in paths)


def controls(folder: Path | None = None) -> dict[str, Declared]:
    """The controls declared in `folder` (default: every folder of suites_folders()), by id."""
    return _scan(_modules((folder,) if folder is not None else suites_folders()))


def clashes(folders: tuple[Path, ...] | None = None) -> list[str]:
    """The ids declared in two of the folders (a user's control reusing a built-in id), naming
    both modules. (Two in one folder are collection's to report, with their lines.)"""
    owners: dict[str, Path] = {}
    found = []
    for folder in folders or suites_folders():
        mine: dict[str, Path] = {}
        for path, mtime in _modules((folder,)):
            mine.update((control, path) for control in _scan(((path, mtime),)))
        found += [f"duplicate control id {control}: declared in {owners[control]} and in {path}"
                  for control, path in mine.items() if control in owners and owners[control] != path]
        owners = {**mine, **owners}
    return found


def known_ids(folder: Path | None = None) -> frozenset[str]:
    """The ids a waiver or an attestation may name."""
    return frozenset(controls(folder))


def known_frameworks(folder: Path | None = None) -> tuple[str, ...]:
    """The framework ids the controls map to, as they spell them (what --framework may name)."""
    return tuple(sorted({name for c in controls(folder).values() for name, _ in c.frameworks}, key=str.lower))


def manual_cadences(folder: Path | None = None) -> dict[str, str]:
    """The manual controls (EA-MAN-*) and the one cadence each is done on."""
    return {c.id: c.cadences[0] for c in sorted(controls(folder).values(), key=lambda c: c.id)
            if is_manual(c.id) and c.cadences}


def is_manual(control: str) -> bool:
    """EA-MAN-NN: only the built-in manual controls are proven by attestation."""
    return control.split("-")[:2] == [BUILTIN_PREFIX, MANUAL_FAMILY]


def reserved_prefix(control: str, module: Path) -> str | None:
    """Why a control of a user's module may not have this id, or None: EA- names the built-in
    controls only, so a release's new control never takes the id of a site's own."""
    if builtin_folder() in Path(module).resolve().parents or not control.startswith(f"{BUILTIN_PREFIX}-"):
        return None
    if control in controls(builtin_folder()):
        return None  # the same id as a built-in: clashes() names both files
    return (f"control id {control} uses the prefix {BUILTIN_PREFIX}-, reserved for edgeaudit's built-in controls. "
            f"Fix: give your own controls a prefix of your own, e.g. ACME-{control.split('-', 1)[1]}")


def reads_of(control_ids: set[str] | list[str], folder: Path | None = None) -> set[str]:
    """The reads the given controls declare."""
    declared = controls(folder)
    return {read for control in control_ids if control in declared for read in declared[control].reads}


@functools.lru_cache(maxsize=256)  # a run's folders, and each module on its own (clashes)
def _scan(files: tuple[tuple[Path, int], ...]) -> dict[str, Declared]:
    """The controls of these modules (each with its modification time: an edited module is read again)."""
    found: dict[str, Declared] = {}
    for path, _ in files:
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        except (OSError, SyntaxError, UnicodeDecodeError):
            continue  # pytest reports the module when it collects it
        for statement in tree.body:
            found.update((c.id, c) for c in _declared_in(statement))
    return found


def _mark_name(node: ast.AST) -> str | None:
    """`x` for an expression `pytest.mark.x`."""
    if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) and node.value.attr == "mark"
            and isinstance(node.value.value, ast.Name) and node.value.value.id == "pytest"):
        return node.attr
    return None


def _declared_in(statement: ast.stmt) -> list[Declared]:
    """The controls of one top-level statement: a decorated test function, or an assignment that
    builds a test from marks (suites/test_manual.py)."""
    nodes: list[ast.AST] = list(statement.decorator_list) if isinstance(statement, ast.FunctionDef) else [statement]
    calls, names = [], set()
    for node in (n for top in nodes for n in ast.walk(top)):
        name = _mark_name(node)
        if name == "control":
            continue
        if isinstance(node, ast.Call) and _mark_name(node.func) == "control":
            calls.append(node)
        elif name:
            names.add(name)
    out = []
    for call in calls:
        given = {k.arg: k.value for k in call.keywords if k.arg in ("id", "severity", "reads")}
        if call.args:
            given["id"] = call.args[0]
        try:  # only these three need be literals (frameworks= may be any expression)
            values = {key: ast.literal_eval(node) for key, node in given.items()}
        except ValueError:
            continue  # collection reports a control the catalog cannot read (unreadable())
        if isinstance(values.get("id"), str):
            out.append(Declared(values["id"], str(values.get("severity", "")), frozenset(names),
                                tuple(values.get("reads", ())), _frameworks(call)))
    return out


def _frameworks(call: ast.Call) -> tuple[tuple[str, str], ...]:
    """frameworks= of a control marker, when written as a dict literal or dict(KEY="...");
    any other expression declares none the catalog can read."""
    node = next((k.value for k in call.keywords if k.arg == "frameworks"), None)
    try:
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict" and not node.args:
            value = {k.arg: ast.literal_eval(k.value) for k in node.keywords if k.arg}
        else:
            value = ast.literal_eval(node) if node is not None else {}
    except ValueError:
        return ()
    if not isinstance(value, dict):
        return ()
    return tuple((str(name), str(requirement)) for name, requirement in value.items())


def unreadable(control: str, severity: str, reads: Any, folder: Path) -> str | None:
    """Why the catalog does not read a collected control as pytest does, or None: the catalog
    would not know it (a waiver naming it refused) or would miss its reads."""
    declared = controls(folder).get(control)
    if declared is None or declared.severity != severity or declared.reads != tuple(reads or ()):
        return (f"the catalog cannot read the control marker of {control} from the source. Fix: write "
                f"@pytest.mark.control(\"{control}\", severity=..., reads=(...)) with literal arguments, "
                "on the test function or in the statement that makes it")
    bad = [read for read in declared.reads if not isinstance(read, str) or not READ_NAME.match(read)]
    if bad:
        return f"reads= of {control}: {bad} not of the form \"service:Operation\" (e.g. \"s3:GetBucketPolicy\")"
    return None
