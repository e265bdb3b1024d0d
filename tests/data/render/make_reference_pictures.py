"""The study's pictures, made by the study's own nilearn, as fixtures for ``render_study_picture``.

The study's environment (its env_rw24.yml: nilearn 0.10.4, matplotlib 3.8.0, numpy 1.26.4, nibabel
5.2.1, pillow 10.2.0) is ``requirements-study.txt``; ``make_study_env.sh`` makes it under
``.study-env/`` (git-ignored) and runs the ``drawn`` step there (and ``pictures`` with ``all``; 108
volumes took about 13 minutes on a loaded two-core machine).

1. ``volumes`` (the project's environment) writes four volumes here: a raw positive BOLD volume
   on BOLD5000's native oblique grid (the synthetic twin's raw run, 106 x 106 x 69 at 2 mm), one
   on the MNI152 2 mm grid, a signed noise volume (both signs around 0) on that grid, and one in
   the native run's brain on its oblique grid (nilearn finds the cut before resampling it)::

       .venv/bin/python tests/data/render/make_reference_pictures.py volumes

2. ``pictures`` (the study's environment) draws each as the study's ``stimulus_timed_fmri_image.py``
   did (``plot_stat_map(img, bg_img=None, threshold=1e2, annotate=False, draw_cross=False,
   colorbar=False, output_file=...)``: a 660 x 350 PNG) and squashes it to 672 x 672 as its
   ``final_ae.py`` loader did (PIL ``convert("RGB")``, torchvision ``Resize((672, 672))``, which on
   a PIL image is PIL's bilinear resize). Outputs: ``<name>.nii.gz`` (the volume) and
   ``<name>_study.png`` (the 672 x 672 picture).

3. ``drawn`` (the study's environment) draws the volumes of ``study_volumes.py`` (seeded; the test
   draws them again) the same way and keeps nilearn's 660 x 350 figure itself, the smaller file
   (the test squashes it to 672 as the study did): ``drawn/<name>.png``, RGB, and
   ``drawn/index.json``: per volume its kind, grid, nilearn's cut (mm) and each view's axes in
   figure pixels (left, top, right, bottom), left to right.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
NAMES = ("raw_native", "mni", "signed_noise", "native_signed_noise")


def volumes() -> None:
    import nibabel as nib
    import numpy as np
    from nilearn import datasets

    from neurolatent.pipeline.params import validate_params
    from neurolatent.io import bids
    from types import SimpleNamespace

    from neurolatent.pipeline.stages import dataset

    work = HERE / "_work"
    params = validate_params({"data": {"subjects": ["CSI1"], "sessions": [1], "runs": [1], "forms": ["raw"],
                                       "synthetic": {"jobs": 1}}, "preprocess": {"space": "raw", "mask": "brain"}})
    dataset.run(params, SimpleNamespace(raw=work / "raw", truth=work / "truth"))
    run = nib.load(work / "raw" / bids.bold_path("CSI1", 1, 1))
    raw = np.asanyarray(run.dataobj)[..., 40]
    nib.save(nib.Nifti1Image(raw.astype(np.int16), run.affine), HERE / "raw_native.nii.gz")
    template = datasets.load_mni152_template(resolution=2)
    rng = np.random.default_rng(7)
    brain = template.get_fdata() > 0.2
    mni = np.where(brain, 1000 * template.get_fdata() + 30 * rng.standard_normal(brain.shape), 0)
    nib.save(nib.Nifti1Image(np.rint(mni).astype(np.int16), template.affine), HERE / "mni.nii.gz")
    noise = np.where(brain, 300 * rng.standard_normal(brain.shape), 0)
    nib.save(nib.Nifti1Image(np.rint(noise).astype(np.int16), template.affine), HERE / "signed_noise.nii.gz")
    native_signed()
    import shutil

    shutil.rmtree(work)


def native_signed() -> None:
    """Signed noise (sd 300, float32) in the raw volume's field of view, on its oblique native grid.
    Seed 3 puts nilearn's cut near the middle between two axial slices, where a cut found on the
    resampled grid instead falls one slice off (r 0.82): the case this fixture is for."""
    import nibabel as nib
    import numpy as np

    raw = nib.load(HERE / "raw_native.nii.gz")
    inside = np.asanyarray(raw.dataobj) > 0
    noise = np.where(inside, 300 * np.random.default_rng(3).standard_normal(inside.shape), 0)
    nib.save(nib.Nifti1Image(noise.astype(np.float32), raw.affine), HERE / "native_signed_noise.nii.gz")


def pictures(names: tuple[str, ...] = NAMES) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import nibabel as nib
    import nilearn
    import numpy as np
    from nilearn import plotting
    from PIL import Image

    assert nilearn.__version__ == "0.10.4", f"the study's nilearn is 0.10.4, this is {nilearn.__version__}"
    for name in names:
        image = nib.load(HERE / f"{name}.nii.gz")
        # as the study: the volume as float32 in a new image with the run's affine
        volume = nib.Nifti1Image(np.asanyarray(image.dataobj).astype(np.float32), image.affine)
        figure_path = HERE / f"_{name}_figure.png"
        plotting.plot_stat_map(volume, bg_img=None, threshold=1e2, annotate=False, draw_cross=False, colorbar=False,
                               output_file=str(figure_path))
        plt.close("all")
        picture = Image.open(figure_path).convert("RGB")
        assert picture.size == (660, 350), picture.size
        picture.resize((672, 672), Image.Resampling.BILINEAR).save(HERE / f"{name}_study.png")
        figure_path.unlink()


def drawn() -> None:
    import json

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import nibabel as nib
    import nilearn
    import numpy as np
    from nilearn import plotting
    from PIL import Image

    sys.path.insert(0, str(HERE))
    import study_volumes

    assert nilearn.__version__ == "0.10.4", f"the study's nilearn is 0.10.4, this is {nilearn.__version__}"
    out = HERE / "drawn"
    out.mkdir(exist_ok=True)
    index = {"nilearn": nilearn.__version__, "seed": study_volumes.SEED, "volumes": {}}
    for name, kind, grid, volume, affine in study_volumes.volumes():
        figure_path = out / f"_{name}.png"
        display = plotting.plot_stat_map(nib.Nifti1Image(volume, affine), bg_img=None, threshold=1e2,
                                         annotate=False, draw_cross=False, colorbar=False)
        # the study's output_file path: savefig at the display's figure's own dpi and facecolor
        display.savefig(str(figure_path))
        height = display.frame_axes.figure.bbox.height
        axes = [cut_axes.ax.get_window_extent() for cut_axes in display.axes.values()]
        index["volumes"][name] = {
            "kind": kind, "grid": grid, "cut_mm": [float(c) for c in display.cut_coords],
            "axes_px": [[round(b.x0, 3), round(height - b.y1, 3), round(b.x1, 3), round(height - b.y0, 3)]
                        for b in sorted(axes, key=lambda b: b.x0)]}
        display.close()
        plt.close("all")
        picture = Image.open(figure_path).convert("RGB")
        assert picture.size == (660, 350), picture.size
        picture.save(out / f"{name}.png", optimize=True)
        figure_path.unlink()
        (out / "index.json").write_text(json.dumps(index, indent=1) + "\n")  # as it goes: a long run


if __name__ == "__main__":
    # `pictures NAME ...` draws only those (the others' pictures stay the bytes nilearn made then)
    {"volumes": volumes, "native_signed": native_signed, "drawn": drawn,
     "pictures": lambda: pictures(tuple(sys.argv[2:]) or NAMES)}[sys.argv[1]]()
