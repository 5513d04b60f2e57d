"""The repository needs nothing beside it: a fresh clone documents and tests itself.

The team reads reference material from a folder next to the repository; the project
must never depend on it. These tests look at every tracked file, and `tests/outside.py`
watches what the test run actually opens.
"""

import ast
import re
import subprocess

import pytest

from tests import outside

ROOT = outside.ROOT

# Written so that this file does not match itself.
OUTSIDE_REFERENCE = re.compile(r"(?:\.\.|/work)[/\\]shared\b")


def tracked_files():
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.decode()
    return [ROOT / name for name in listed.split("\0") if name and (ROOT / name).is_file()]


@pytest.fixture(scope="module")
def files():
    if not (ROOT / ".git").exists():
        pytest.fail("not a git checkout: these tests need `git ls-files`")
    return tracked_files()


def text_of(path):
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return None  # not text


def test_it_refers_to_no_folder_beside_the_repository(files):
    found = []
    for path in files:
        text = text_of(path)
        for n, line in enumerate((text or "").splitlines(), 1):
            if OUTSIDE_REFERENCE.search(line):
                found.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert found == []


def test_it_carries_its_own_documentation_and_vignettes():
    for name in ("domain.md", "alliance-check.md", "caseload-format.md"):
        assert (ROOT / "docs" / name).is_file(), name
    assert (ROOT / "strategies" / "vignettes" / "public.json").is_file()


# --- Paths the code builds from its own location ---------------------------------------


def climb(node, names):
    """Where a path built from its own file's location leads: (levels up, highest level on the way).

    None if `node` is not such a path. Follows what code does to reach a folder from
    `__file__`: `Path(__file__)`, `.resolve()`, `.parent`, `.parents[n]`,
    `os.path.dirname(...)`, `/ "sub/.."`, and module-level names assigned one of those.
    The highest level matters, not the last: `ROOT / ".." / "data"` ends one level down
    again, but in a folder beside the repository.
    """
    if isinstance(node, ast.Name):
        return (0, 0) if node.id == "__file__" else names.get(node.id)
    if isinstance(node, ast.Attribute) and node.attr == "parent":
        return _up(climb(node.value, names), 1)
    if (
        isinstance(node, ast.Subscript)
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "parents"
        and isinstance(node.slice, ast.Constant)
        and isinstance(node.slice.value, int)
    ):
        return _up(climb(node.value.value, names), node.slice.value + 1)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        where = climb(node.left, names)
        right = node.right
        if where is None or not (isinstance(right, ast.Constant) and isinstance(right.value, str)):
            return where
        for part in re.split(r"[/\\]", right.value):
            if part == "..":
                where = _up(where, 1)
            elif part not in ("", "."):
                where = _up(where, -1)
        return where
    if isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in ("resolve", "absolute", "expanduser"):
            return climb(func.value, names)
        if isinstance(func, ast.Name):
            name = func.id
        elif isinstance(func, ast.Attribute):
            name = func.attr
        else:
            name = ""
        if name in ("Path", "PurePath", "abspath", "realpath", "normpath") and node.args:
            return climb(node.args[0], names)
        if name == "dirname" and node.args:
            return _up(climb(node.args[0], names), 1)
    return None


def _up(where, steps):
    if where is None:
        return None
    up, highest = where
    return up + steps, max(highest, up + steps)


def climbs_above(source, depth):
    """The lines where code in a file `depth` folders deep builds a path above the root.

    A file at the root has depth 1 (its folder is one step up from it).
    """
    tree = ast.parse(source)
    names = {}
    for statement in tree.body:
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target = statement.targets[0]
            if isinstance(target, ast.Name):
                where = climb(statement.value, names)
                if where is not None:
                    names[target.id] = where
    lines = set()
    for node in ast.walk(tree):
        where = climb(node, names) if isinstance(node, ast.expr) else None
        if where is not None and where[1] > depth:
            lines.add(node.lineno)
    return sorted(lines)


@pytest.mark.parametrize(
    "source, depth, bad",
    [
        ("ROOT = Path(__file__).resolve().parents[1]", 2, False),
        ("ROOT = Path(__file__).resolve().parents[2]", 2, True),
        ("BASE = Path(__file__).resolve().parent.parent", 2, False),
        ("BASE = Path(__file__).resolve().parent.parent.parent", 2, True),
        ("x = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))", 1, True),
        ("ROOT = Path(__file__).parents[1]\nSHARED = ROOT.parent / 'shared'", 2, True),
        ("ROOT = Path(__file__).parents[1]\nDATA = ROOT / '..' / 'data'", 2, True),
        ("ROOT = Path(__file__).parents[1]\nDATA = ROOT / 'static' / 'css'", 2, False),
        ("f = Path(__file__).parent / '../../x.json'", 2, True),
        ("f = Path(__file__).parent / 'a/../b.json'", 2, False),
    ],
)
def test_it_sees_a_path_built_above_the_root(source, depth, bad):
    assert bool(climbs_above(source, depth)) is bad


# The guard names the parent folder to watch it; it never reads from it.
WATCHES_THE_PARENT = {"tests/outside.py"}


def test_its_code_builds_no_path_above_the_repository(files):
    found = []
    for path in files:
        if path.suffix != ".py" or path.relative_to(ROOT).as_posix() in WATCHES_THE_PARENT:
            continue
        depth = len(path.relative_to(ROOT).parts)
        for line in climbs_above(path.read_text(encoding="utf-8"), depth):
            found.append(f"{path.relative_to(ROOT)}:{line}")
    assert found == []


# --- What the test run opens -----------------------------------------------------------


@pytest.mark.skipif(
    not outside.is_beside(outside.ROOT.parent / "x"),
    reason="the repository sits straight in the temporary folder: its neighbours are pytest's",
)
def test_it_notices_when_the_tests_open_a_file_beside_the_repository():
    beside = ROOT.parent / f"{ROOT.name}-not-there.json"
    before = len(outside.reads_beside)
    with pytest.raises(FileNotFoundError):
        beside.open(encoding="utf-8")
    assert outside.reads_beside[before:] == [str(beside)]
    del outside.reads_beside[before:]  # this one was on purpose


@pytest.mark.parametrize(
    "path, root, beside",
    [
        ("/srv/notes/domain.md", "/srv/repo", True),
        ("/srv/repo-other/x", "/srv/repo", True),
        ("/srv/repo/README.md", "/srv/repo", False),
        ("/srv/repo", "/srv/repo", False),
        ("/srv/.cache/x", "/srv/repo", False),
        ("/tmp/pytest-of-me/x", "/srv/repo", False),
        ("/etc/hosts", "/srv/repo", False),
        ("/tmp/tmp.a1/shared/x", "/tmp/tmp.a1/repo", True),
        ("/tmp/pytest-of-me/x", "/tmp/tmp.a1/repo", False),
        ("/tmp/pytest-of-me/x", "/tmp/repo", False),
        ("/tmp/shared/x", "/tmp/repo", False),  # indistinguishable from pytest's own
    ],
)
def test_it_tells_a_file_beside_the_repository_from_the_rest(path, root, beside):
    assert outside.is_beside(path, root=root, temp="/tmp") is beside
