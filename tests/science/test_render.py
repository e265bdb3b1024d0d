"""The fMRI pictures: the fast engine against nilearn's plot_stat_map in today's style, and
against the study's own pictures (made by nilearn 0.10.4, ``tests/data/render/``) in its style."""

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from neurolatent.io import bids
from neurolatent.science.render import render_fast, render_nilearn, render_study_picture

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "render"


def _run_volumes(dataset, count=6):
    image = nib.load(dataset[0] / bids.bold_path("CSI1", 1, 1))
    return np.moveaxis(np.asanyarray(image.dataobj)[..., 10:10 + count].astype(np.float32), 3, 0), image.affine


def _pixel_r(first, second):
    return [np.corrcoef(a.ravel().astype(float), b.ravel().astype(float))[0, 1] for a, b in zip(first, second)]


@pytest.mark.parametrize("case", ["raw", "signed", "flipped", "noise"])
def test_fast_renderer_draws_nilearns_picture(small_dataset, case):
    """The fast engine against plot_stat_map on the same volumes: raw intensities (colour scale
    [0, max]), shifted ones with both signs (symmetric scale, the background drawn too), a
    flipped affine (nilearn reorders the axes first), and signed noise (where the second cut
    threshold, |mean(v)| against mean(|v|), decides the cut). The pictures must agree to r >= 0.99."""
    volumes, affine = _run_volumes(small_dataset)
    threshold = 100.0
    if case == "signed":
        volumes = volumes - 600.0
    if case == "noise":
        image = nib.load(FIXTURES / "signed_noise.nii.gz")
        volumes, affine = np.asanyarray(image.dataobj).astype(np.float32)[None], image.affine
    if case == "flipped":
        volumes, affine = volumes[:, ::-1].copy(), affine @ np.diag([-1.0, 1, 1, 1]) + np.outer(
            [affine[0, 0] * (volumes.shape[1] - 1), 0, 0, 0], [0, 0, 0, 1])
    reference = np.stack([render_nilearn(v, affine, 64, threshold) for v in volumes])
    fast = render_fast(volumes, affine, 64, threshold)
    assert fast.shape == reference.shape and fast.dtype == np.uint8
    assert min(_pixel_r(reference, fast)) > 0.99
    # a different volume draws a different picture: the agreement is not a blank against a blank
    assert max(_pixel_r(reference[:1], render_fast(volumes[::-1][:1] * -1, affine, 64, threshold))) < 0.9


def test_fast_resize_is_pils_bilinear():

    from neurolatent.science.render import _resize, _resize_into

    rng = np.random.default_rng(0)
    figures = rng.integers(0, 2**32 - 1, size=(3, 26, 70), dtype=np.uint32).repeat(10, axis=1).repeat(10, axis=2)
    for size in (64, 672):
        ours = np.empty((len(figures), 3, size, size), dtype=np.uint8)
        _resize_into(figures, ours)
        pil = np.stack([_resize(Image.frombuffer("RGB", (700, 260), f, "raw", "RGBX", 0, 1), size) for f in figures])
        assert np.abs(ours.astype(int) - pil).max() <= 1


@pytest.mark.parametrize("name", ["raw_native", "mni", "signed_noise"])
def test_study_style_draws_the_studys_own_picture(name):
    """render_study_picture against nilearn 0.10.4's picture of the same volume, saved and squashed
    to 672 x 672 as the study's code did (tests/data/render/make_reference_pictures.py)."""
    image = nib.load(FIXTURES / f"{name}.nii.gz")
    volume = np.asanyarray(image.dataobj).astype(np.float32)
    reference = np.asarray(Image.open(FIXTURES / f"{name}_study.png").convert("RGB"))
    ours = render_study_picture(volume, image.affine)
    assert ours.shape == (672, 672, 3) and ours.dtype == np.uint8
    assert _pixel_r([reference], [ours])[0] >= 0.99
    # today's picture of the same volume is another picture: the style is what makes the match
    today = render_fast(volume[None], image.affine, 672, 100.0, "nilearn")[0].transpose(1, 2, 0)
    assert _pixel_r([reference], [today])[0] < 0.9
