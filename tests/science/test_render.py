"""The fMRI pictures: the fast engine against nilearn's plot_stat_map in today's style, and
against the study's own pictures (made by nilearn 0.10.4, ``tests/data/render/``) in its style."""

import importlib.util
from contextlib import nullcontext
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from neurolatent.io import bids
from neurolatent.science.render import render_fast, render_nilearn, render_study_picture, render_volumes

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "render"
_SPEC = importlib.util.spec_from_file_location("study_volumes", FIXTURES / "study_volumes.py")
study_volumes = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(study_volumes)
DRAWN = study_volumes.index()


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


@pytest.mark.parametrize("name", ["raw_native", "mni", "signed_noise", "native_signed_noise"])
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


@pytest.mark.parametrize("name", sorted(DRAWN))
def test_study_style_draws_nilearn_0104s_picture_of_any_volume(name):
    """render_study_picture against nilearn 0.10.4's picture of volumes drawn at random from a fixed
    seed (tests/data/render/study_volumes.py: six kinds, axis-aligned, MNI, oblique and BOLD5000's
    grids; nilearn's figures in tests/data/render/drawn/): r >= 0.99 over the picture, >= 0.98 in
    each of its three views."""
    k = int(name.split("_")[0])
    drawn_name, kind, grid, volume, affine = study_volumes.volume(k, seed=study_volumes.SEED)
    assert drawn_name == name and DRAWN[name]["kind"] == kind, "study_volumes.py no longer draws the fixtures' volumes"
    ours = render_study_picture(volume, affine)
    whole, views = study_volumes.compare(ours, name, DRAWN[name])
    assert whole >= 0.99 and min(views) >= 0.98, f"{name}: r {whole:.4f}, views {np.round(views, 4)}"


@pytest.mark.parametrize("case", ["run", "signed_noise", "two_blobs", "below_threshold"])
def test_cut_components_find_nilearns_cut(small_dataset, case):
    """For a batch of one volume, the centre of mass of |v| in the components the fast engine labels
    is nilearn's own find_xyz_cut_coords (in voxels): the run's first volume, signed noise, two
    separate blobs (the largest component wins) and a volume with nothing above threshold."""
    from nilearn.plotting import find_xyz_cut_coords
    from scipy import ndimage

    from neurolatent.science.render import _cut_components

    volumes, affine = _run_volumes(small_dataset, count=1)
    volume = volumes[0]
    if case == "signed_noise":
        image = nib.load(FIXTURES / "signed_noise.nii.gz")
        volume, affine = np.asanyarray(image.dataobj).astype(np.float32), image.affine
    if case == "two_blobs":
        # the larger blob A (160 voxels, half of them at 2000) is the component; |mean| over it is
        # 1075, which blob B (120 voxels at 1100) exceeds too: the second component is A's top half
        volume = np.zeros((30, 30, 30), np.float32)
        volume[2:12, 2:6, 2:6], volume[2:12, 2:6, 2:4], volume[15:25, 15:21, 15:17] = 150.0, 2000.0, 1100.0
    if case == "below_threshold":
        volume = np.random.default_rng(0).uniform(0, 90, (20, 20, 20)).astype(np.float32)
    region, _ = _cut_components(np.abs(volume), volume, 100.0)
    ours = ndimage.center_of_mass(np.abs(volume) * region)
    with pytest.warns(UserWarning) if case == "below_threshold" else nullcontext():
        world = find_xyz_cut_coords(nib.Nifti1Image(volume, affine), activation_threshold=100.0)
    theirs = np.linalg.solve(affine, [*world, 1.0])[:3]
    np.testing.assert_allclose(ours, theirs, atol=1e-3)


@pytest.mark.parametrize("arguments, message", [
    ({"engine": "gpu"}, "engine: Input should be 'nilearn' or 'fast' (got 'gpu')"),
    ({"size": 0}, "size: Input should be greater than or equal to 1 (got 0)"),
    ({"threshold": -1.0}, "threshold: Input should be greater than or equal to 0 (got -1.0)"),
])
def test_a_bad_render_argument_is_one_line_naming_it(arguments, message):
    with pytest.raises(ValueError) as info:
        render_volumes(np.zeros((1, 4, 4, 4), np.float32), np.eye(4), **({"engine": "fast", "size": 32,
                                                                         "threshold": 0.0} | arguments))
    assert str(info.value) == message
