"""The shape of the code, read from its syntax trees: no module reaches into another object's private members,
and no function is longer than a screen and a half."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import forewarn

SRC = Path(forewarn.__file__).parent
MAX_FUNCTION_LINES = 80
MAX_MODULE_LINES = 400

PENDING_LONG_FUNCTIONS = {
    ("core/resolutions.py", "_lateral"),  # 89 lines: to split (issue 14)
}
"""Known long functions in modules another change is rewriting; each must still be long (remove it when not)."""

KERNEL_DECORATORS = {"njit", "jit", "vectorize", "guvectorize"}
"""Numba kernels: one flat loop the compiler sees whole; splitting them costs calls in the hot path."""


def modules() -> Iterator[tuple[Path, ast.Module]]:
    for path in sorted(SRC.rglob("*.py")):
        yield path, ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def module_names(tree: ast.Module) -> set[str]:
    """The names a module defines at its top level (its own private functions, classes and constants)."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def private_reaches(tree: ast.Module) -> list[tuple[int, str]]:
    """``x._name`` where ``x`` is not ``self``, ``cls`` or a class or function of the module itself."""
    own = module_names(tree) | {"self", "cls"}
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and is_private(node.attr):
            base = node.value
            if isinstance(base, ast.Name) and base.id in own:
                continue
            found.append((node.lineno, f"{ast.unparse(base)}.{node.attr}"))
    return found


def test_the_check_finds_a_reach_into_another_objects_private_member() -> None:
    tree = ast.parse("class A:\n    def f(self, other):\n        return self._a, other._b, A._c, other.__dict__\n")
    assert private_reaches(tree) == [(3, "other._b")]


def test_no_module_uses_a_private_member_of_another_object() -> None:
    reaches = [f"{path.relative_to(SRC)}:{line}: {what}" for path, tree in modules()
               for line, what in private_reaches(tree)]
    assert reaches == []


def decorator_names(node: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    names: set[str] = set()
    for decorator in node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        if isinstance(target, ast.Attribute):
            names.add(target.attr)
        elif isinstance(target, ast.Name):
            names.add(target.id)
    return names


def long_functions(tree: ast.Module) -> list[tuple[str, int]]:
    """Functions (and methods, and nested functions) over :data:`MAX_FUNCTION_LINES` lines, numba kernels aside."""
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not decorator_names(node) & KERNEL_DECORATORS:
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                found.append((node.name, length))
    return found


def test_the_check_measures_functions_and_spares_kernels() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    tree = ast.parse(f"def long():\n{body}\n\n@numba.njit\ndef kernel():\n{body}\n\ndef short():\n    pass\n")
    assert long_functions(tree) == [("long", MAX_FUNCTION_LINES + 1)]


def test_no_function_is_over_80_lines() -> None:
    long = {(str(path.relative_to(SRC)), name): n for path, tree in modules() for name, n in long_functions(tree)}
    assert sorted(set(long) - PENDING_LONG_FUNCTIONS) == []
    assert sorted(PENDING_LONG_FUNCTIONS - set(long)) == []  # fixed since: drop it from the pending list


def modules_over_400_lines() -> list[str]:
    """Listed for the record (``pytest -s``), not failed: the split of the remaining long modules is ongoing."""
    out = []
    for path in sorted(SRC.rglob("*.py")):
        n = len(path.read_text(encoding="utf-8").splitlines())
        if n > MAX_MODULE_LINES:
            out.append(f"{path.relative_to(SRC)}: {n} lines")
    return out


def test_long_modules_are_listed() -> None:
    print("\nmodules over 400 lines:", *modules_over_400_lines(), sep="\n  ")


STORE_REACHERS_LEFT = {"http/deps.py", "http/ledger_routes.py", "http/track_routes.py", "cli/main.py"}
"""Faces that still read the store through ``.repo`` (being edited by other changes): to move to use cases."""

BUILT_IN_COMPOSE = {"SQLiteRepository", "PostgresRepository", "TrackStore", "PostgresTrackStore", "Forewarn",
                    "Tracker", "DeliveryDesk"}
"""The store and the service parts: constructed only by the composition root (``service/compose.py``)."""


def repo_reaches(tree: ast.Module) -> list[int]:
    """Lines of every ``<anything>.repo`` (a face reaching through the service to its store)."""
    return sorted(node.lineno for node in ast.walk(tree) if isinstance(node, ast.Attribute) and node.attr == "repo")


def constructions(tree: ast.Module) -> list[tuple[int, str]]:
    """Calls of the store and service classes of :data:`BUILT_IN_COMPOSE` (``Name(...)`` or ``mod.Name(...)``)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if name in BUILT_IN_COMPOSE:
                found.append((node.lineno, name))
    return found


def test_the_checks_find_store_reaches_and_constructions() -> None:
    tree = ast.parse("def f(rt):\n    rt.service.repo.get_party('x')\n    return store.SQLiteRepository(p), "
                     "Forewarn(r)\n")
    assert repo_reaches(tree) == [2]
    assert sorted(constructions(tree)) == [(3, "Forewarn"), (3, "SQLiteRepository")]


def test_faces_talk_to_use_cases_not_to_the_store() -> None:
    """The HTTP and CLI faces call the service's use cases; none reaches ``.repo`` (but those listed)."""
    reaches = [f"{path.relative_to(SRC)}:{line}" for path, tree in modules()
               if path.relative_to(SRC).parts[0] in ("http", "cli")
               and str(path.relative_to(SRC)) not in STORE_REACHERS_LEFT for line in repo_reaches(tree)]
    assert reaches == []


def test_only_the_composition_root_builds_the_store_and_the_service() -> None:
    built = [f"{path.relative_to(SRC)}:{line}: {name}" for path, tree in modules()
             if str(path.relative_to(SRC)) != "service/compose.py" for line, name in constructions(tree)]
    assert built == []
