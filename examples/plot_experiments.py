"""
Comparing experiments
=====================

The pipeline's params live in ``params.yaml``; an experiment is a run with some of them changed,
``dvc exp run -S data.synthetic.snr=0.5``, and ``dvc exp show`` lists every experiment's params and
metrics side by side. ``make show`` prints the same as one table that fits a terminal, with the
params each experiment changed (:mod:`neurolatent.pipeline.experiments.table`). This example does
it for real, in seconds, on a DVC project of one small stage made in a temporary directory: an
RSA of four planted subjects against their planted features, at the SNR ``params.yaml`` names.
"""

# %%
# A DVC project of one stage
# --------------------------
# The stage reads its params, plants four subjects at that SNR
# (:func:`~neurolatent.science.fewshot.planted_subjects`: each a random linear map of 18 features,
# plus unit noise), compares each subject's RDM with the features' RDM, and writes the headline the
# pipeline writes, ``metrics/summary.json``, under the same names (``samples.r``: the mean Spearman
# r; ``samples.nc``: the noise ceiling's lower bound). ``dvc.yaml`` declares the params it reads and
# the metrics it writes, as the pipeline's stages do.
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import matplotlib.pyplot as plt

from neurolatent.pipeline.experiments import table

STAGE = '''
import json
from pathlib import Path

import numpy as np
import yaml

from neurolatent.science.fewshot import planted_subjects
from neurolatent.science.rsa.compare import compare
from neurolatent.science.rsa.inference import noise_ceiling
from neurolatent.science.rsa.rdm import rdm_upper

params = yaml.safe_load(Path("params.yaml").read_text())
subjects, features = planted_subjects(params["data"]["synthetic"]["snr"], n_images=params["data"]["images"],
                                      seed=params["data"]["synthetic"]["seed"])
rdms = np.stack([rdm_upper(s.matrix) for s in subjects.values()])
model = rdm_upper(features.matrix)
Path("metrics").mkdir(exist_ok=True)
Path("metrics/summary.json").write_text(json.dumps({
    "samples.r": float(np.mean([compare(model, rdm, "spearman") for rdm in rdms])),
    "samples.nc": noise_ceiling(rdms, "spearman")[0]}))
'''
DVC_YAML = '''
stages:
  rsa:
    cmd: python stage.py
    deps: [stage.py]
    params: [data]
    metrics:
      - metrics/summary.json:
          cache: false
'''
PARAMS = {"data": {"images": 80, "synthetic": {"seed": 0, "snr": 0.3}}}

# the stage runs this Python (dvc runs its cmd through the shell); the temporary repository's
# commits need an author; DVC's usage analytics stay off
environment = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                            "GIT_AUTHOR_NAME": "gallery", "GIT_AUTHOR_EMAIL": "gallery@example.org",
                            "GIT_COMMITTER_NAME": "gallery", "GIT_COMMITTER_EMAIL": "gallery@example.org",
                            "DVC_NO_ANALYTICS": "1"}
project = Path(tempfile.mkdtemp(prefix="neurolatent-experiments-"))


def shell(*command: str) -> str:
    """Run a command in the project, with this Python's dvc; its output."""
    if command[0] == "dvc":
        command = (sys.executable, "-m", "dvc", *command[1:])
    done = subprocess.run(command, cwd=project, env=environment, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


(project / "stage.py").write_text(STAGE)
(project / "dvc.yaml").write_text(textwrap.dedent(DVC_YAML))
(project / "params.yaml").write_text(json.dumps(PARAMS))  # JSON is YAML
shell("git", "init", "-q")
shell("dvc", "init", "-q")
shell("dvc", "repro", "-q")
shell("git", "add", "-A")
shell("git", "commit", "-qm", "baseline: SNR 0.3")

# %%
# Two experiments, each one ``-S``
# --------------------------------
# Each ``dvc exp run -S key=value`` applies the change to the baseline's params, reruns the stages
# that read the changed keys, and records the result as an experiment of the baseline commit (a git
# ref, not a commit on the branch). The pipeline's own experiments are run the same way:
# ``dvc exp run -S data.synthetic.snr=0.5 -S rsa.permutations=5000`` in this repository.
for name, change in (("no-signal", "data.synthetic.snr=0.0"), ("snr-1", "data.synthetic.snr=1.0")):
    shell("dvc", "exp", "run", "-q", "-n", name, "-S", change)

# %%
# ``dvc exp show``, read by the project's table
# ---------------------------------------------
# ``dvc exp show --json`` gives every baseline and experiment with its params and metrics;
# :func:`neurolatent.pipeline.experiments.table.rows` reads it into one row per experiment with the
# headline's columns (the pipeline's headline has more: those this stage does not write show ``-``)
# and the params the experiment changed, and
# :func:`~neurolatent.pipeline.experiments.table.render` prints them as ``make show`` does.
# ``workspace`` is the files as ``dvc exp run`` left them: the last experiment's.
shown = table.rows(json.loads(shell("dvc", "exp", "show", "--json")))
print(table.render(shown, width=200))

experiments = [row for row in shown if row["Experiment"].startswith("  ")]
baseline = next(row for row in shown if row["Experiment"] not in ("workspace", *(e["Experiment"] for e in experiments)))
fig, ax = plt.subplots(figsize=(8, 4.4))
for x, row in enumerate([baseline, *experiments]):
    ax.bar(x, row["samples.r"], color="C0", label="samples.r (mean Spearman r)" if x == 0 else None)
    ax.hlines(row["samples.nc"], x - 0.4, x + 0.4, color="k", lw=2,
              label="samples.nc (noise ceiling, lower bound)" if x == 0 else None)
ax.set_xticks(range(1 + len(experiments)),
              [f"{row['Experiment'].strip()}\n" + "\n".join(row["changed"].split(", ") if row["changed"] else
                                                            [f"(baseline, SNR {row['snr']})"])
               for row in [baseline, *experiments]], fontsize=8)
ax.axhline(0, color="k", lw=0.5)
ax.set_ylabel("group RSA r with the planted features")
ax.set_title("dvc exp show --json: the baseline and each experiment, with the params it changed")
ax.set_ylim(-0.05, 1.1)
ax.legend(frameon=False, loc="upper center", ncol=2)
fig.tight_layout()

# %%
# The experiment without signal finds r near 0, and so does its noise ceiling. At SNR 1 the planted
# features' RDM matches the subjects' far better than at the baseline's 0.3, and the ceiling rises
# with it: the ceiling is a property of the data (their SNR, how many images), not of the model, so
# it moves with every ``-S`` that changes the data. At SNR 0.3 the planted model is above the lower
# bound: that bound compares a subject with the mean of the three others, itself noisy when the
# signal is weak, so the true model can beat it (only the upper bound caps a model). In this
# repository ``make show`` prints this table for the pipeline's experiments, and
# ``dvc exp show --only-changed`` is DVC's own, wider view of the same.
shutil.rmtree(project)
plt.show()
