"""The boundary between layers, checked: dvc.yaml and MLproject say what the stage registry says,
every stage's deps cover the code it runs, and the library never loads a stage."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from neurolatent.config import Params
from neurolatent.source import import_closure
from neurolatent.stages.registry import (COMMON_MODULES, STAGES, dvc_stage, mlproject_entry_points,
                                         select_params)

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "neurolatent"
DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text())


def test_dvc_yaml_declares_exactly_the_registered_stages():
    assert list(DVC["stages"]) == list(STAGES)


@pytest.mark.parametrize("name", list(STAGES))
def test_each_stage_in_dvc_yaml_is_its_registry_entry(name):
    """cmd, deps, params, outs and metrics, as generated (python -m neurolatent.stages.registry)."""
    assert DVC["stages"][name] == dvc_stage(STAGES[name])


@pytest.mark.parametrize("name", list(STAGES))
def test_deps_cover_the_stage_import_closure(name):
    """Every neurolatent module the stage's module imports (at any depth, lazy imports included),
    and the modules every stage runs (params, numerics), is a dvc.yaml dependency of the stage."""
    deps = set(DVC["stages"][name]["deps"])
    closure = {str(p) for module in (STAGES[name].module, *COMMON_MODULES) for p in import_closure(module)}
    missing = sorted(closure - deps)
    assert not missing, f"stage {name} runs {missing}, which dvc.yaml does not list as deps"


def test_closure_follows_lazy_and_from_imports(tmp_path):
    closure = {str(p) for p in import_closure("neurolatent.stages.rsa")}
    assert {"src/neurolatent/science/rsa.py", "src/neurolatent/science/stats.py", "src/neurolatent/io/samples.py",
            "src/neurolatent/figures.py", "src/neurolatent/stages/rsa.py"} <= closure
    assert not any(p.startswith("src/neurolatent/stages/") and p != "src/neurolatent/stages/rsa.py" for p in closure)


@pytest.mark.parametrize("name", list(STAGES))
def test_no_stage_imports_another(name):
    others = {f"src/neurolatent/stages/{other}.py" for other in STAGES if other != name} | {
        "src/neurolatent/stages/registry.py", "src/neurolatent/cli.py"}
    assert not others & {str(p) for p in import_closure(STAGES[name].module)}


def test_mlproject_is_the_registry():
    assert yaml.safe_load((ROOT / "MLproject").read_text())["entry_points"] == mlproject_entry_points()


def test_importing_the_library_loads_no_stage():
    """Import every module of science, models and io, plus the top-level library modules, in a fresh
    process: no neurolatent.stages module (not even the registry) may be loaded."""
    modules = [".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts)
               for folder in ("science", "models", "io") for p in sorted((PACKAGE / folder).glob("*.py"))]
    modules += ["neurolatent.figures", "neurolatent.tracking", "neurolatent.reporting", "neurolatent.runtime"]
    code = (f"import importlib, sys\nfor m in {modules!r}: importlib.import_module(m)\n"
            "print(sorted(m for m in sys.modules if m.startswith('neurolatent.stages')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", result.stdout


def test_package_init_files_hold_only_docstrings_and_constants():
    """Why import_closure may leave them out: they run no code a stage's result could depend on."""
    for init in PACKAGE.rglob("__init__.py"):
        for node in ast.parse(init.read_text()).body:
            assert isinstance(node, (ast.Expr, ast.Assign)), f"{init}: {ast.dump(node)[:80]}"


@pytest.mark.parametrize("name", list(STAGES))
def test_declared_params_exist_and_are_all_a_stage_sees(name):
    view = select_params(Params(), STAGES[name].params)
    for key in STAGES[name].params:
        value = view
        for part in key.split("."):
            value = getattr(value, part)
    declared_sections = {key.split(".")[0] for key in STAGES[name].params}
    undeclared = next(section for section in Params.model_fields if section not in declared_sections)
    with pytest.raises(AttributeError):
        getattr(view, undeclared)


def test_a_partly_declared_section_hides_the_rest():
    view = select_params(Params(), ("preprocess.lag_s", "compute"))
    assert view.preprocess.lag_s == (4.0, 6.0) and view.compute.threads == 2
    with pytest.raises(AttributeError):
        view.preprocess.method


@pytest.mark.parametrize("name", list(STAGES))
def test_stage_help_names_its_params_and_files(name, capsys):
    from neurolatent.cli import main

    with pytest.raises(SystemExit):
        main([name, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for key in STAGES[name].params:
        assert key in text
    for file in STAGES[name].files:
        assert f"--{file.name.replace('_', '-')}" in text and file.path in text
