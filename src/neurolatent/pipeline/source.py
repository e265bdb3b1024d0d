"""The package's own source code: which files a module imports (its closure, what a DVC stage
depends on) and a digest of their contents (what a training checkpoint is tied to).

Read from disk with :mod:`ast`, never by importing: importing would load numpy before the CLI
pins the numerics.
"""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

import neurolatent

#: where the package's sources are in a checkout, as dvc.yaml names them
SOURCE_ROOT = Path("src/neurolatent")
#: the folder that holds the ``neurolatent`` package (src/ in a checkout, site-packages in a wheel)
_PACKAGES = Path(neurolatent.__file__).resolve().parent.parent


def _module_file(module: str) -> Path | None:
    """The source file of a neurolatent module (``.py`` or a package's ``__init__.py``), found on disk
    without importing it (importing would load numpy before the CLI pins the numerics)."""
    base = _PACKAGES.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _imported_modules(path: Path) -> set[str]:
    """Modules of ``neurolatent`` a source file imports, at any depth of the file (lazy imports too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("neurolatent")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("neurolatent"):
            found.add(node.module)
            # `from neurolatent.science import rsa` imports the module neurolatent.science.rsa
            found |= {f"{node.module}.{alias.name}" for alias in node.names
                      if _module_file(f"{node.module}.{alias.name}") is not None}
    return found


def import_closure(module: str) -> list[Path]:
    """Source files of ``module`` and every neurolatent module it imports, recursively, relative
    to the repository root (``src/neurolatent/...``). Package ``__init__`` files hold docstrings
    only (tested), so they are left out."""
    seen: set[str] = set()
    todo = [module]
    files: set[Path] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = _module_file(name)
        if path is None:
            raise ValueError(f"{name}: no such neurolatent module")
        if path.name != "__init__.py":
            files.add(SOURCE_ROOT / path.relative_to(_PACKAGES / "neurolatent"))
        todo += sorted(_imported_modules(path) - seen)
    return sorted(files)


def source_digest(module: str) -> str:
    """SHA-1 of the source of ``module`` and of every neurolatent module it imports (hex, 16 chars):
    changes with any edit to the code that the module runs."""
    digest = hashlib.sha1()
    for relative in import_closure(module):
        digest.update(str(relative).encode() + b"\0")
        digest.update((_PACKAGES / "neurolatent" / relative.relative_to(SOURCE_ROOT)).read_bytes())
    return digest.hexdigest()[:16]
