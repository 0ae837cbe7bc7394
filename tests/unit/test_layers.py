"""The package's layers import downward only (docs/architecture.md "Layers").

An ast walk over ``watcher/`` (no import is executed): every ``import``/``from … import`` of a
``watcher`` module — at module level, inside functions, under ``TYPE_CHECKING`` alike — must target
the importer's own unit or a unit of a lower layer. Units of one layer do not import each other, so
there is no cycle between subpackages. Imports inside functions are allowed only with a reason on
the line (``# deferred: …``), and there are few of them.
"""

from __future__ import annotations

import ast
import pathlib
import shutil

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[2] / "watcher"

# Bottom first. A unit is a subpackage or a top-level module of ``watcher``.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "version"),
    ("support",),
    ("model",),
    ("templates", "schedule"),
    ("es",),
    ("destinations",),
    ("engine",),
    ("definitions",),
    ("delivery",),
    ("daemon",),
    ("api", "operations"),
    ("demo", "receiver", "localcluster"),
    ("http",),
    ("cli",),
    ("__init__",),  # the package itself re-exports watcher.api
)
MAX_DEFERRED_IMPORTS = 19
DEFERRED = "# deferred:"


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _module_name(path: pathlib.Path, root: pathlib.Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _targets(node: ast.AST, module: str, is_package: bool) -> list[str]:
    """The watcher modules an import statement names (``from a import b`` may name module a.b)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name.split(".")[0] == "watcher"]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[:len(base) - node.level + 1]
        name = ".".join([*base, *([node.module] if node.module else [])])
    else:
        name = node.module or ""
    if name.split(".")[0] != "watcher":
        return []
    if name == "watcher":  # from watcher import api → the unit is the name imported
        return [f"watcher.{alias.name}" for alias in node.names]
    return [name]


def _function_imports(tree: ast.AST) -> list[ast.stmt]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found += [sub for sub in ast.walk(node) if isinstance(sub, (ast.Import, ast.ImportFrom))]
    return list({id(node): node for node in found}.values())


def check(root: pathlib.Path = PACKAGE) -> tuple[list[str], list[str]]:
    """``(violations, deferred)`` for the package at ``root``: each violation names file:line, the
    import and the rule it breaks; ``deferred`` lists the imports inside functions (file:line)."""
    rank = {unit: index for index, layer in enumerate(LAYERS) for unit in layer}
    violations, deferred = [], []
    for path in sorted(root.rglob("*.py")):
        module = _module_name(path, root)
        unit = _unit(module)
        where = path.relative_to(root.parent)
        if unit not in rank:
            violations.append(f"{where}: unit {unit!r} is in no layer (add it to LAYERS)")
            continue
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        tree = ast.parse(text)
        for node in _function_imports(tree):
            deferred.append(f"{where}:{node.lineno}")
            line, above = lines[node.lineno - 1], lines[node.lineno - 2] if node.lineno > 1 else ""
            if DEFERRED not in line and DEFERRED not in above:
                violations.append(f"{where}:{node.lineno}: import inside a function without "
                                  f"'{DEFERRED} <reason>': {ast.unparse(node)}")
        for node in ast.walk(tree):
            for target in _targets(node, module, path.name == "__init__.py"):
                other = _unit(target)
                if other == unit:
                    continue
                if other not in rank:
                    violations.append(f"{where}:{node.lineno}: imports {target}, which is in no layer")
                elif rank[other] > rank[unit]:
                    violations.append(f"{where}:{node.lineno}: {unit} imports {target} from a higher layer "
                                      f"({other})")
                elif rank[other] == rank[unit]:
                    violations.append(f"{where}:{node.lineno}: {unit} imports {target}, a unit of its own "
                                      f"layer ({other})")
    return violations, deferred


def test_layers_import_downward_only():
    violations, _ = check()
    assert violations == []


def test_imports_inside_functions_are_few_and_give_a_reason():
    _, deferred = check()
    assert len(deferred) <= MAX_DEFERRED_IMPORTS, deferred


@pytest.mark.parametrize("importer, imported, broken", [
    ("es/state.py", "from watcher.engine.execute import execute_watch", "from a higher layer (engine)"),
    ("templates/jinja.py", "import watcher.schedule", "a unit of its own layer (schedule)"),
    ("model/watch.py", "from watcher import api", "from a higher layer (api)"),
])
def test_an_upward_import_is_reported(tmp_path, importer, imported, broken):
    copy = tmp_path / "watcher"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / importer
    target.write_text(target.read_text(encoding="utf-8") + f"\n{imported}\n", encoding="utf-8")
    violations, _ = check(copy)
    assert len(violations) == 1 and broken in violations[0] and importer in violations[0], violations


def test_a_function_import_without_a_reason_is_reported(tmp_path):
    copy = tmp_path / "watcher"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / "support" / "durations.py"
    target.write_text(target.read_text(encoding="utf-8") + "\n\ndef _late():\n    import json\n", encoding="utf-8")
    violations, _ = check(copy)
    assert violations == [f"watcher/support/durations.py:{len(target.read_text().splitlines())}: import inside a "
                          f"function without '{DEFERRED} <reason>': import json"]
