"""The boundary between layers, checked: dvc.yaml and MLproject say what the stage registry says,
every stage's deps cover the code it runs, and the library never loads a stage."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from neurolatent.pipeline.params import Params
from neurolatent.pipeline.params_docs import explain
from neurolatent.pipeline.source import import_closure
from neurolatent.pipeline.registry import (COMMON_MODULES, STAGES, dvc_stage, mlproject_entry_points,
                                         select_params)

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "neurolatent"
DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text())


def test_dvc_yaml_declares_exactly_the_registered_stages():
    assert list(DVC["stages"]) == list(STAGES)


@pytest.mark.parametrize("name", list(STAGES))
def test_each_stage_in_dvc_yaml_is_its_registry_entry(name):
    """cmd, deps, params, outs and metrics, as generated (python -m neurolatent.pipeline.registry)."""
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
    closure = {str(p) for p in import_closure("neurolatent.pipeline.stages.rsa")}
    assert {"src/neurolatent/science/rsa/inference.py", "src/neurolatent/science/stats.py",
            "src/neurolatent/io/samples.py", "src/neurolatent/pipeline/outputs/figures/rsa.py",
            "src/neurolatent/pipeline/stages/rsa.py"} <= closure
    assert not any(p.startswith("src/neurolatent/pipeline/stages/") and p != "src/neurolatent/pipeline/stages/rsa.py"
                   for p in closure)


@pytest.mark.parametrize("name", list(STAGES))
def test_no_stage_imports_another(name):
    others = {f"src/neurolatent/pipeline/stages/{other}.py" for other in STAGES if other != name} | {
        "src/neurolatent/pipeline/registry.py", "src/neurolatent/pipeline/cli.py"}
    assert not others & {str(p) for p in import_closure(STAGES[name].module)}


def test_mlproject_is_the_registry():
    assert yaml.safe_load((ROOT / "MLproject").read_text())["entry_points"] == mlproject_entry_points()


LIBRARY = ("science", "io", "models")


def _modules(folder: str) -> list[str]:
    return [".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts)
            for p in sorted((PACKAGE / folder).rglob("*.py"))]


def test_importing_the_library_loads_no_pipeline_module():
    """Import every module of science, io and models in a fresh process: no module of the pipeline
    (params, numerics, tracking, stages, ...) may be loaded; the library takes arrays, paths and
    plain arguments, and progress or parallelism as arguments."""
    modules = [m for folder in LIBRARY for m in _modules(folder)]
    code = (f"import importlib, sys\nfor m in {modules!r}: importlib.import_module(m)\n"
            "print(sorted(m for m in sys.modules if m.startswith('neurolatent.pipeline')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert len(modules) > 30 and result.stdout.strip() == "[]", result.stdout


def test_the_package_top_level_holds_packages():
    loose = sorted(p.name for p in PACKAGE.glob("*.py") if p.name not in ("__init__.py", "__main__.py", "errors.py"))
    assert loose == []
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").is_file()} >= {
        "science", "io", "models", "pipeline"}


def test_no_source_module_is_over_500_lines():
    """A module that grows past 500 lines holds more than one job: split it by job."""
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 500}
    assert long == {}


def test_every_public_callable_has_a_docstring():
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        def visit(nodes, prefix=""):
            for node in nodes:
                if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
                    if not ast.get_docstring(node):
                        missing.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {prefix}{node.name}")
                    if isinstance(node, ast.ClassDef):
                        visit(node.body, f"{node.name}.")
        visit(ast.parse(path.read_text()).body)
    assert missing == []


def test_the_params_reference_is_current():
    """docs/params.md is generated from the declarations (python -m neurolatent.pipeline.params_docs --write)."""
    from neurolatent.pipeline.params_docs import reference

    assert (ROOT / "docs" / "params.md").read_text() == reference()


def test_every_param_has_its_explanation():
    from neurolatent.pipeline.params_docs import leaves

    assert [key for key, field in leaves() if not field.description] == []


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
    from neurolatent.pipeline.cli import main

    with pytest.raises(SystemExit):
        main([name, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for key in STAGES[name].params:
        assert key in text
    for line in explain(STAGES[name].params):  # each param it reads, with its explanation
        assert " ".join(line.split()) in text
    for file in STAGES[name].files:
        assert f"--{file.name.replace('_', '-')}" in text and file.path in text
