"""The package's layers, as docs/design.md draws them: no lower layer imports
a higher one, and the client and the tools never import the server side."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "olivia"

#: What each part may import (besides itself, the standard library and
#: third-party packages).  The root package only for ``__version__``.
ALLOWED: dict[str, set[str]] = {
    "observe": set(),
    "config": set(),
    "core": {"observe"},
    "protocols": {"core", "observe"},
    "cluster": {"core", "observe", "protocols", "config"},
    "server": {"core", "observe", "protocols", "cluster", "config"},
    "client": {"core", "protocols"},
    "tools": {"client", "core", "protocols"},
}


def part_of(module: str) -> str:
    """``olivia.core.store`` -> ``core``; ``olivia.config`` -> ``config``."""
    return module.split(".")[1]


def modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        name = ".".join(relative.parts).removesuffix(".__init__")
        if name.count(".") >= 1 and name not in ("olivia.__main__",):
            found.append((name, path))
    return found


def imports_of(path: Path) -> list[tuple[str, list[str]]]:
    """(module imported, names imported from it) for every olivia import."""
    result = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("olivia"):
            result.append((node.module, [alias.name for alias in node.names]))
        elif isinstance(node, ast.Import):
            result += [(alias.name, []) for alias in node.names
                       if alias.name.startswith("olivia")]
    return result


@pytest.mark.parametrize(("name", "path"), modules(), ids=[name for name, _ in modules()])
def test_no_module_imports_a_higher_layer(name: str, path: Path) -> None:
    part = part_of(name)
    assert part in ALLOWED, f"{name}: a part of the package the layer map does not know"
    for imported, names in imports_of(path):
        if imported == "olivia":
            assert names == ["__version__"], f"{name} imports {names} from the root package"
            continue
        target = part_of(imported)
        assert target == part or target in ALLOWED[part], (
            f"{name} ({part}) imports {imported} ({target}): not allowed by the layer map")


def test_the_map_covers_every_part() -> None:
    parts = {part_of(name) for name, _ in modules()}
    assert parts == set(ALLOWED)
