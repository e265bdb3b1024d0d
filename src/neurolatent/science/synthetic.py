"""A synthetic BOLD5000 with a planted truth: the science of it, as functions on arrays.

The planted truth, end to end:

1. Each image is drawn procedurally from its name (:func:`draw_image`): COCO-like images are
   several objects on a textured ground, ImageNet-like ones a single large centred object,
   scene-like ones a sky/ground layout with structures. Same name, same pixels.
2. Each image gets a feature vector computed from its decoded pixels by :func:`image_features`
   (colour, contrast, oriented edge energy, coarse layout, fine detail; 18 numbers).
3. Features are z-scored over the generated stimulus set (``Z``, images x 18). A subject's voxel
   responses in the visual region are a fixed linear map of them: ``P = Z @ W_s`` with
   ``W_s ~ N(0, 1/18)`` drawn per subject, then each voxel's column scaled to unit sd over images.
4. A run's BOLD is, per brain voxel, ``baseline + sigma * (snr * X @ P[trial images] + drift + e)``:
   ``X`` the trials' 1 s boxcars convolved with nilearn's Glover HRF (peak 1), ``drift`` slow
   cosines (periods >= 128 s) scaled by ``drift_scale``, ``e`` white N(0, 1) noise, ``sigma`` the
   voxel's own noise sd. So ``snr`` is the sd of a voxel's peak trial response over its noise sd,
   and ``snr = 0`` leaves no trace of the stimuli at all.
"""

from __future__ import annotations

import hashlib

import numpy as np
from nilearn.glm.first_level import compute_regressor, make_first_level_design_matrix
from PIL import Image, ImageDraw, ImageFilter

from neurolatent.science.stats import zscore

FEATURE_NAMES: tuple[str, ...] = (
    "mean_red", "mean_green", "mean_blue", "luminance_sd",
    "edges_0deg", "edges_45deg", "edges_90deg", "edges_135deg",
    *(f"layout_{row}{col}" for row in "tmb" for col in "lcr"),
    "fine_detail",
)
#: MNI coordinates (mm) of the centres of the planted visual region: left and right occipital pole
ROI_CENTRES_MM = ((-20.0, -88.0, 2.0), (20.0, -88.0, 2.0))
FEATURE_SIDE = 64


def name_seed(*parts: object) -> int:
    """A stable 64-bit seed from any labels (Python's hash() changes between processes)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little")


def _colour(rng: np.random.Generator, low: int = 0, high: int = 256) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(low, high, size=3))


def _blob(draw: ImageDraw.ImageDraw, rng: np.random.Generator, centre, radius, fill) -> None:
    cx, cy = centre
    if rng.random() < 0.5:
        rx, ry = radius * rng.uniform(0.6, 1.0), radius * rng.uniform(0.6, 1.0)
        draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=fill)
    else:
        n = int(rng.integers(3, 8))
        angles = np.sort(rng.uniform(0, 2 * np.pi, n))
        radii = radius * rng.uniform(0.5, 1.0, n)
        draw.polygon([(cx + r * np.cos(a), cy + r * np.sin(a)) for a, r in zip(angles, radii)], fill=fill)


def draw_image(image_name: str, category: str, size: int) -> np.ndarray:
    """Draw one stimulus, deterministically from its name.

    Parameters
    ----------
    image_name : str
        BOLD5000 image name; it alone seeds the drawing.
    category : {"coco", "imagenet", "scenes"}
    size : int
        Side of the square image, pixels.

    Returns
    -------
    ndarray, shape (size, size, 3), uint8 RGB
    """
    rng = np.random.default_rng(name_seed("image", image_name))
    s = size
    if category == "scenes":
        horizon = int(s * rng.uniform(0.35, 0.7))
        sky = np.linspace(_colour(rng, 90, 230), _colour(rng, 150, 256), horizon)
        ground = np.linspace(_colour(rng, 40, 160), _colour(rng, 0, 90), s - horizon)
        pixels = np.concatenate([sky, ground])[:, None, :].repeat(s, axis=1).astype(np.uint8)
        image = Image.fromarray(pixels)
        draw = ImageDraw.Draw(image)
        for _ in range(int(rng.integers(2, 9))):  # buildings, trees, walls on the horizon
            x0 = rng.uniform(0, s)
            width, height = rng.uniform(0.04, 0.25) * s, rng.uniform(0.1, 0.6) * s
            draw.rectangle([x0, horizon - height, x0 + width, horizon], fill=_colour(rng, 20, 200))
        if rng.random() < 0.5:  # a road or path in perspective
            draw.polygon([(s * 0.45, horizon), (s * 0.55, horizon), (s * 0.9, s), (s * 0.1, s)],
                         fill=_colour(rng, 60, 140))
    elif category == "imagenet":
        background = np.array(_colour(rng, 100, 256), dtype=float)
        pixels = np.clip(background + rng.normal(0, 6, (s, s, 3)), 0, 255).astype(np.uint8)
        image = Image.fromarray(pixels)
        draw = ImageDraw.Draw(image)
        centre = (s * rng.uniform(0.4, 0.6), s * rng.uniform(0.4, 0.6))
        _blob(draw, rng, centre, s * rng.uniform(0.25, 0.42), _colour(rng, 0, 200))
        _blob(draw, rng, centre, s * rng.uniform(0.05, 0.15), _colour(rng))
    elif category == "coco":
        noise = rng.normal(0, 1, (s // 8 + 1, s // 8 + 1, 3))
        texture = np.kron(noise, np.ones((8, 8, 1)))[:s, :s]
        pixels = np.clip(np.array(_colour(rng, 60, 200)) + 25 * texture, 0, 255).astype(np.uint8)
        image = Image.fromarray(pixels)
        draw = ImageDraw.Draw(image)
        for _ in range(int(rng.integers(3, 8))):
            _blob(draw, rng, (s * rng.uniform(0.1, 0.9), s * rng.uniform(0.1, 0.9)),
                  s * rng.uniform(0.06, 0.2), _colour(rng))
    else:
        raise ValueError(f"unknown category {category!r}")
    return np.asarray(image.filter(ImageFilter.SMOOTH), dtype=np.uint8)


def image_features(rgb: np.ndarray) -> np.ndarray:
    """The planted feature vector of one image: a fixed function of its pixels.

    The image is resized to 64x64 (bilinear) and scaled to [0, 1]; luminance is
    0.299 R + 0.587 G + 0.114 B. Features, in :data:`FEATURE_NAMES` order:
    channel means (3); luminance sd (1); mean absolute luminance derivative along 0, 45, 90 and
    135 degrees (4); mean luminance in a 3x3 grid, rows top to bottom (9); mean absolute
    discrete Laplacian of luminance (1).

    Parameters
    ----------
    rgb : ndarray, shape (height, width, 3), uint8

    Returns
    -------
    ndarray, shape (18,), float64
    """
    small = Image.fromarray(rgb).resize((FEATURE_SIDE, FEATURE_SIDE), Image.Resampling.BILINEAR)
    x = np.asarray(small, dtype=np.float64) / 255.0
    lum = x @ np.array([0.299, 0.587, 0.114])
    dx = np.abs(np.diff(lum, axis=1)).mean()
    dy = np.abs(np.diff(lum, axis=0)).mean()
    d45 = np.abs(lum[1:, :-1] - lum[:-1, 1:]).mean() / np.sqrt(2)
    d135 = np.abs(lum[1:, 1:] - lum[:-1, :-1]).mean() / np.sqrt(2)
    thirds = np.array_split(np.arange(FEATURE_SIDE), 3)
    layout = [lum[np.ix_(r, c)].mean() for r in thirds for c in thirds]
    laplacian = np.abs(4 * lum[1:-1, 1:-1] - lum[:-2, 1:-1] - lum[2:, 1:-1] - lum[1:-1, :-2] - lum[1:-1, 2:]).mean()
    return np.array([*x.reshape(-1, 3).mean(axis=0), lum.std(), dx, d45, dy, d135, *layout, laplacian])


def planted_patterns(features_z: np.ndarray, n_voxels: int, rng: np.random.Generator) -> np.ndarray:
    """A subject's voxel response patterns: a random linear map of the z-scored features.

    Parameters
    ----------
    features_z : ndarray, shape (n_images, n_features)
    n_voxels : int
        Voxels in the planted region.
    rng : numpy Generator, the subject's own.

    Returns
    -------
    ndarray, shape (n_images, n_voxels), float64; every column has mean 0 and sd 1 over images.
    """
    weights = rng.normal(0.0, 1.0 / np.sqrt(features_z.shape[1]), (features_z.shape[1], n_voxels))
    return zscore(features_z @ weights)


def roi_mask(brain: np.ndarray, affine: np.ndarray, radius_mm: float) -> np.ndarray:
    """The planted visual region: brain voxels within ``radius_mm`` of either ROI centre.

    Parameters
    ----------
    brain : ndarray of bool, shape (X, Y, Z)
    affine : ndarray, shape (4, 4), voxel -> MNI mm

    Returns
    -------
    ndarray of bool, shape (X, Y, Z)
    """
    ijk = np.indices(brain.shape).reshape(3, -1)
    xyz = (affine[:3, :3] @ ijk + affine[:3, 3:]).T
    near = np.zeros(len(xyz), dtype=bool)
    for centre in ROI_CENTRES_MM:
        near |= np.linalg.norm(xyz - np.asarray(centre), axis=1) <= radius_mm
    return near.reshape(brain.shape) & brain


def trial_regressors(onsets_s: np.ndarray, durations_s: np.ndarray, n_volumes: int, tr_s: float) -> np.ndarray:
    """Each trial's boxcar convolved with nilearn's Glover HRF, sampled at the volumes.

    Returns
    -------
    ndarray, shape (n_volumes, n_trials), float64; each column scaled to peak 1 (so a unit
    response amplitude is a unit peak BOLD change).
    """
    frame_times = np.arange(n_volumes) * tr_s
    columns = []
    for onset, duration in zip(onsets_s, durations_s):
        regressor, _ = compute_regressor(
            np.array([[onset], [duration], [1.0]]), "glover", frame_times, oversampling=16
        )
        columns.append(regressor[:, 0])
    design = np.stack(columns, axis=1)
    peak = np.abs(design).max(axis=0)
    return design / np.where(peak > 0, peak, 1.0)


def drift_basis(n_volumes: int, tr_s: float, cutoff_s: float = 128.0) -> np.ndarray:
    """nilearn's DCT drift regressors (periods >= ``cutoff_s``, the slow drift SPM's high-pass
    removes), each scaled to unit sd.

    Returns
    -------
    ndarray, shape (n_volumes, n_cosines), unit-sd columns.
    """
    design = make_first_level_design_matrix(np.arange(n_volumes) * tr_s, drift_model="cosine",
                                            high_pass=1.0 / cutoff_s)
    basis = design.filter(like="drift").to_numpy()
    return basis / basis.std(axis=0)


def bold_timeseries(
    design: np.ndarray,
    trial_patterns: np.ndarray,
    roi_columns: np.ndarray,
    baseline: np.ndarray,
    noise_sd: np.ndarray,
    snr: float,
    drift_scale: float,
    rng: np.random.Generator,
    tr_s: float = 2.0,
) -> np.ndarray:
    """One run's BOLD for the brain voxels.

    Parameters
    ----------
    design : ndarray, shape (n_volumes, n_trials), from :func:`trial_regressors`
    trial_patterns : ndarray, shape (n_trials, n_roi_voxels), the planted pattern of each trial's image
    roi_columns : ndarray of int, shape (n_roi_voxels,), positions of the region's voxels among the brain voxels
    baseline, noise_sd : ndarray, shape (n_brain_voxels,), intensity units
    snr : float, peak trial-response sd over noise sd
    drift_scale : float, drift sd in units of noise sd
    rng : numpy Generator, the run's own
    tr_s : repetition time, seconds (sets the drift's periods)

    Returns
    -------
    ndarray, shape (n_volumes, n_brain_voxels), float32, intensity units
    """
    n_volumes, n_voxels = design.shape[0], baseline.shape[0]
    units = rng.standard_normal((n_volumes, n_voxels), dtype=np.float32)
    drift = drift_basis(n_volumes, tr_s)
    units += (drift @ rng.normal(0, drift_scale / np.sqrt(drift.shape[1]), (drift.shape[1], n_voxels))).astype(np.float32)
    if snr > 0:
        units[:, roi_columns] += (snr * design @ trial_patterns).astype(np.float32)
    units *= noise_sd.astype(np.float32)
    units += baseline.astype(np.float32)
    return units
