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
    params["data"]["synthetic"].update(voxel_size_mm=4, image_size=64, jobs=1)
    params["preprocess"]["jobs"] = 1
    params["fmri_ae"].update(train_subjects=["CSI1"], test_subjects=["CSI2"])
    params["fmri_ae"]["train"]["epochs"] = 2
    params["image_ae"]["train"]["epochs"] = 2
    params["rsa"].update(permutations=300, bootstrap=100, cka_permutations=100)
    params["stitch"].update(permutations=100)
    params["encode"].update(search=3, folds=3, bootstrap=100)
    params["align"].update(k=[5, 10], features=4, bootstrap=100)  # 30 training images a subject here
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["git", "init", "-q"], dest)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A"], dest)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"], dest)
    return dest
