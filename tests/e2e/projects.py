"""Throwaway git + DVC projects made from this one, on small params, for the end-to-end tests (a
helper module: one test module a project, as pytest-xdist's --dist loadfile gives each module one
worker)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def run(cmd: list[str], cwd: Path, unset: tuple[str, ...] = ()) -> str:
    """Run ``cmd`` in ``cwd`` with this environment's tools first on PATH, without the ``unset`` variables."""
    env = {k: v for k, v in os.environ.items() if k not in unset} | {"PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def make_project(dest: Path) -> Path:
    """A git clone-alike of this project (tracked files only) in ``dest``, with small data params and
    one thread a stage (make test runs two pytest workers on 2 cores)."""
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    for rel in files:
        if (ROOT / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest / rel)
    (dest / "dvc.lock").unlink(missing_ok=True)
    params = yaml.safe_load((dest / "params.yaml").read_text())
    params["compute"]["threads"] = 1
    params["data"].update(subjects=["CSI1", "CSI2"], runs=[1])
    # one run (37 trials): 6 repeated images shown 4 times (the stitch split's test set, min_test 5)
    params["data"]["synthetic"].update(voxel_size_mm=4, image_size=64, jobs=1, repeats=6)
    params["preprocess"]["jobs"] = 1
    params["fmri_ae"].update(train_subjects=["CSI1"], test_subjects=["CSI2"])
    params["fmri_ae"]["train"]["epochs"] = 2
    params["image_ae"]["train"]["epochs"] = 2
    params["rsa"].update(fit_permutations=300, bootstrap=100, cka_permutations=100)
    params["stitch"].update(permutations=100)
    params["encode"].update(search=3, folds=3, bootstrap=100)
    params["align"].update(k=[5, 10], features=4, bootstrap=100, test_fraction=0.3)  # 19 images: 13 training, 6 test
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["git", "init", "-q"], dest)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A"], dest)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"], dest)
    return dest


def out_hashes(project: Path) -> dict[str, str]:
    """{output path: DVC hash} of every stage output in the project's dvc.lock."""
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    return {out["path"]: out["md5"] for stage in lock["stages"].values() for out in stage.get("outs", [])}


def output_files(project: Path) -> dict[str, bytes]:
    """Every file of every stage output in dvc.lock, by path relative to the project."""
    files = {}
    for path in out_hashes(project):
        target = project / path
        for item in ([target] if target.is_file() else sorted(p for p in target.rglob("*") if p.is_file())):
            files[str(item.relative_to(project))] = item.read_bytes()
    return files


def user_files(project: Path) -> dict[str, str]:
    """SHA-1 of every file the pipeline made or keeps (data, models, metrics, plots, dvc.lock)."""
    import hashlib

    return {str(path.relative_to(project)): hashlib.sha1(path.read_bytes()).hexdigest()
            for folder in ("data", "models", "metrics", "plots") for path in sorted((project / folder).rglob("*"))
            if path.is_file()} | {"dvc.lock": hashlib.sha1((project / "dvc.lock").read_bytes()).hexdigest()}


def failing(cmd: list[str], cwd: Path) -> str:
    """Run ``cmd``, which must fail; its stdout and stderr."""
    env = os.environ | {"PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode != 0, f"{' '.join(cmd)} succeeded:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def lineage(project: Path, hashes: dict[str, str], stages: set[str], skip: set[str] = frozenset()):
    """The pipeline run of the newest `dvc repro` of HEAD (not in ``skip``) in the current MLflow
    store must be FINISHED and parent exactly ``stages``, each tagged with dvc.lock's hashes
    (``hashes``) of its inputs and outputs; returns (the parent run, its stage runs by name)."""
    import mlflow

    commit = run(["git", "rev-parse", "HEAD"], project).strip()
    parents = [found for found in mlflow.search_runs(
        experiment_names=["neurolatent"], output_format="list",
        filter_string=f"tags.`neurolatent.role` = 'pipeline' and attributes.run_name = 'repro {commit[:7]}'")
        if found.info.run_id not in skip]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    parent = parents[0]
    children = {found.info.run_name: found for found in mlflow.search_runs(
        experiment_names=["neurolatent"], output_format="list",
        filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")}
    assert set(children) == stages
    for found in children.values():
        tags = {key.removeprefix("dvc.out."): value for key, value in found.data.tags.items() if key.startswith("dvc.out.")}
        assert tags and all(hashes[path] == value for path, value in tags.items()), found.info.run_name
        inputs = {key.removeprefix("dvc.in."): value for key, value in found.data.tags.items() if key.startswith("dvc.in.")}
        assert all(hashes[path] == value for path, value in inputs.items() if path in hashes), found.info.run_name
    return parent, children
