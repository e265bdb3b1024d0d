"""The recipe of reference.npz: BrainIAK's SRM and DetSRM and fmralign's Procrustes template on
fixed small synthetic data, which tests/test_alignment.py compares neurolatent.science.alignment with.

Run in a side environment with the references installed (they are not the project's dependencies):

    python -m venv /tmp/ref && /tmp/ref/bin/pip install mpi4py brainiak==0.12 fmralign==0.0.6 --no-deps \
        numpy scipy scikit-learn joblib nilearn       # brainiak needs MPI (Debian: libopenmpi-dev)
    /tmp/ref/bin/python tests/data/alignment/make_reference.py

(fmralign 0.0.6 installed with --no-deps: its Procrustes path needs neither torch nor POT.)
"""

from pathlib import Path

import numpy as np
from brainiak.funcalign.srm import SRM, DetSRM
from fmralign import GroupAlignment
from fmralign.methods.procrustes import scaled_procrustes


def data() -> dict[str, np.ndarray]:
    """Three subjects (40, 50, 60 voxels) responding to 30 images through a 5-dim shared response,
    plus noise; a fourth, new subject (45 voxels); and three subjects of one 8-column space (fmralign's)."""
    rng = np.random.default_rng(38)
    shared = rng.standard_normal((5, 30))
    out = {}
    for i, voxels in enumerate((40, 50, 60, 45)):
        w = np.linalg.qr(rng.standard_normal((voxels, 5)))[0]
        out[f"x{i}"] = w @ shared + 0.3 * rng.standard_normal((voxels, 30))
    base = rng.standard_normal((30, 8))
    for i in range(3):
        rotation = np.linalg.qr(rng.standard_normal((8, 8)))[0]
        out[f"p{i}"] = (1 + 0.2 * i) * base @ rotation + 0.2 * rng.standard_normal((30, 8))
    return out


def main() -> None:
    inputs = data()
    subjects = [inputs[f"x{i}"] for i in range(3)]
    refs = {}
    for name, model in (("srm", SRM(n_iter=10, features=5, rand_seed=0)),
                        ("detsrm", DetSRM(n_iter=10, features=5, rand_seed=0))):
        model.fit(subjects)
        for i, w in enumerate(model.w_):
            refs[f"{name}_w{i}"] = w
        refs[f"{name}_s"] = model.s_
        refs[f"{name}_new_w"] = model.transform_subject(inputs["x3"])
        if name == "srm":
            refs["srm_sigma_s"], refs["srm_rho2"] = model.sigma_s_, model.rho2_
    group = GroupAlignment(method="procrustes", n_iter=2, scale_template=False)
    group.fit({f"sub{i}": inputs[f"p{i}"] for i in range(3)}, y="template")
    refs["procrustes_template"] = group.template
    for i in range(3):
        refs[f"procrustes_aligned{i}"] = group.fitted_estimators[f"sub{i}"].transform(inputs[f"p{i}"])
    # a new subject's voxels (45) onto the template (8 columns): fmralign's dual branch (taken when
    # samples < features) needs equal widths, its primal one does not
    r, scale = scaled_procrustes(inputs["x3"].T, group.template, scaling=True, primal=True)
    refs["procrustes_new_r"], refs["procrustes_new_scale"] = r, np.float64(scale)
    np.savez_compressed(Path(__file__).with_name("reference.npz"), **inputs, **refs)


if __name__ == "__main__":
    main()
