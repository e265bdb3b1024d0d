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

The geometry is BOLD5000's (:class:`Anatomy`): each subject's brain is the MNI152 brain moved into
a T1w space of its own (a seeded scaling, rotation and shift); the visual region is the union of
ten ROI spheres (EarlyVis, LOC, OPA, PPA, RSC in each hemisphere) on that T1w grid, where the
planted responses live. The raw runs are on a native oblique grid in scanner space, into which the
head moves by a rigid displacement per session and drifts slowly within a run (:func:`head_motion`,
:func:`sample_trilinear`); fMRIPrep-like runs are on the T1w grid with the motion undone. GLMsingle-
like betas are the single-trial OLS estimates' sampling distribution (:func:`beta_noise_factor`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numba
import numpy as np
from nilearn.glm.first_level import compute_regressor, make_first_level_design_matrix
from PIL import Image, ImageDraw, ImageFilter
from scipy import ndimage
from scipy.spatial.transform import Rotation

from neurolatent.science.stats import zscore

FEATURE_NAMES: tuple[str, ...] = (
    "mean_red", "mean_green", "mean_blue", "luminance_sd",
    "edges_0deg", "edges_45deg", "edges_90deg", "edges_135deg",
    *(f"layout_{row}{col}" for row in "tmb" for col in "lcr"),
    "fine_detail",
)
#: MNI coordinates (mm) of the five visual ROIs' centres in the left hemisphere (x mirrored for the
#: right): calcarine cortex, lateral occipital, occipital place area, parahippocampal place area,
#: retrosplenial cortex (typical localizer peaks)
ROI_CENTRES_MM = {"EarlyVis": (-10.0, -92.0, 0.0), "LOC": (-44.0, -78.0, -4.0), "OPA": (-34.0, -84.0, 22.0),
                  "PPA": (-26.0, -46.0, -10.0), "RSC": (-14.0, -56.0, 14.0)}
FEATURE_SIDE = 64
#: BOLD5000's grids at 2 mm: fMRIPrep's T1w-space runs and the raw (native) runs
T1W_SHAPE_2MM = (71, 89, 72)
RAW_SHAPE_2MM = (106, 106, 69)


@dataclass(frozen=True)
class TwinSettings:
    """What the synthetic twin is drawn with (params.yaml's ``data.synthetic``, where each is explained).

    seed : every random stream's; snr : a region voxel's trial-response sd over its noise sd;
    voxel_size_mm : of the grids; image_size : stimulus side, pixels; roi_radius_mm : of each ROI
    sphere; noise_percent : noise sd, % of baseline; drift_scale : slow drift sd, in noise sds;
    families : {ROI: feature family} (the visual hierarchy by default); same_images : every subject
    sees the first one's images; shared_dims : shared content beyond the features (:func:`shared_content`);
    repeats : BOLD5000's repeated images planted in the selected runs."""

    seed: int
    snr: float
    voxel_size_mm: int
    image_size: int
    roi_radius_mm: float
    noise_percent: float
    drift_scale: float
    #: the feature family (a key of :data:`FAMILIES`) each ROI's responses are planted from
    families: dict[str, str]
    same_images: bool = False
    shared_dims: int = 0
    repeats: int = 0


def name_seed(*parts: object) -> int:
    """A stable 64-bit seed from any labels (Python's hash() changes between processes)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little")


def _colour(rng: np.random.Generator, low: int = 0, high: int = 256) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(low, high, size=3))


def _blob(draw: ImageDraw.ImageDraw, rng: np.random.Generator, centre, radius, fill) -> bool:
    """Draw an ellipse or a polygon (half the time each) of about ``radius``; True for a polygon."""
    cx, cy = centre
    if rng.random() < 0.5:
        rx, ry = radius * rng.uniform(0.6, 1.0), radius * rng.uniform(0.6, 1.0)
        draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=fill)
        return False
    else:
        n = int(rng.integers(3, 8))
        angles = np.sort(rng.uniform(0, 2 * np.pi, n))
        radii = radius * rng.uniform(0.5, 1.0, n)
        draw.polygon([(cx + r * np.cos(a), cy + r * np.sin(a)) for a, r in zip(angles, radii)], fill=fill)
        return True


@dataclass(frozen=True)
class Drawing:
    """What :func:`draw_stimulus` drew, in fractions of the image side (positions from the top left).

    objects : (n, 7) rows (x, y, radius, polygon 0/1, red, green, blue: colour in [0, 1]) of the objects (an ImageNet-like image's large
        centred one first); horizon : where the ground meets the sky or backdrop; structures : (m, 3)
        rows (x, width, height) of the buildings, trees and walls on the horizon; road : a path in
        perspective (a depth cue); ground_texture : the ground's texture amplitude (0: smooth)
    """

    category: str
    objects: np.ndarray
    horizon: float
    structures: np.ndarray
    road: bool
    ground_texture: float


#: how each category is drawn: horizon height (fraction from the top), number of structures on the
#: horizon and their height, the chance of a road, the ground's texture amplitude, the number of
#: objects on the ground and their radius. The ranges overlap, so every family varies within a
#: category as much as between categories (scenes are not all alike, nor are COCO images)
CATEGORY_DRAWING = {
    "scenes": {"horizon": (0.3, 0.7), "structures": (1, 8), "height": (0.1, 0.5), "road": 0.5, "texture": (0, 25),
               "objects": (0, 4), "radius": (0.03, 0.12)},
    "coco": {"horizon": (0.1, 0.5), "structures": (0, 5), "height": (0.05, 0.3), "road": 0.3, "texture": (5, 40),
             "objects": (1, 7), "radius": (0.06, 0.2)},
    "imagenet": {"horizon": (0.35, 0.85), "structures": (0, 4), "height": (0.05, 0.3), "road": 0.15, "texture": (0, 20),
                 "objects": (0, 3), "radius": (0.04, 0.12)},
}


def draw_stimulus(image_name: str, category: str, size: int) -> tuple[np.ndarray, Drawing]:
    """Draw one stimulus, deterministically from its name; return its pixels and what was drawn.

    Every image is a view of a sky (or backdrop) over a textured ground, with structures on the
    horizon, a road in perspective some of the time, and objects on the ground, each drawn from its
    category's ranges (:data:`CATEGORY_DRAWING`): scene-like images a sky/ground view with many
    structures; COCO-like ones several objects on a textured ground seen from above (a high
    horizon); ImageNet-like ones, in addition, one large centred object before a low horizon.

    Parameters
    ----------
    image_name : BOLD5000 image name; it alone seeds the drawing.
    category : "coco", "imagenet" or "scenes"
    size : side of the square image, pixels.

    Returns
    -------
    (ndarray (size, size, 3) uint8 RGB, :class:`Drawing`)
    """
    if category not in CATEGORY_DRAWING:
        raise ValueError(f"unknown category {category!r}")
    rng = np.random.default_rng(name_seed("image", image_name))
    ranges, s = CATEGORY_DRAWING[category], size
    horizon = max(1, int(s * rng.uniform(*ranges["horizon"])))
    texture = float(rng.uniform(*ranges["texture"]))
    sky = np.linspace(_colour(rng, 90, 230), _colour(rng, 150, 256), horizon)
    ground = np.linspace(_colour(rng, 40, 180), _colour(rng, 0, 120), s - horizon)
    pixels = np.concatenate([sky, ground])[:, None, :].repeat(s, axis=1)
    noise = rng.normal(0, 1, (s // 8 + 1, s // 8 + 1, 3))
    pixels[horizon:] += texture * np.kron(noise, np.ones((8, 8, 1)))[:s - horizon, :s]
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    structures, objects = [], []
    for _ in range(int(rng.integers(*ranges["structures"]))):  # buildings, trees, walls on the horizon
        x0, width, height = rng.uniform(0, s), rng.uniform(0.04, 0.25) * s, rng.uniform(*ranges["height"]) * s
        draw.rectangle([x0, horizon - height, x0 + width, horizon], fill=_colour(rng, 20, 200))
        structures.append((x0 / s, width / s, height / s))
    road = bool(rng.random() < ranges["road"])
    if road:
        draw.polygon([(s * 0.45, horizon), (s * 0.55, horizon), (s * 0.9, s), (s * 0.1, s)], fill=_colour(rng, 60, 140))
    if category == "imagenet":  # the one large centred object, with a detail on it
        centre = (s * rng.uniform(0.4, 0.6), s * rng.uniform(0.4, 0.6))
        radius, fill = s * rng.uniform(0.25, 0.42), _colour(rng, 0, 200)
        objects.append((centre[0] / s, centre[1] / s, radius / s, float(_blob(draw, rng, centre, radius, fill)),
                        *(np.array(fill) / 255)))
        _blob(draw, rng, centre, s * rng.uniform(0.05, 0.15), _colour(rng))
    top = max(0.1, horizon / s)
    for _ in range(int(rng.integers(*ranges["objects"]))):  # objects on the ground
        centre = (s * rng.uniform(0.1, 0.9), s * rng.uniform(top, 0.95))
        radius, fill = s * rng.uniform(*ranges["radius"]), _colour(rng)
        objects.append((centre[0] / s, centre[1] / s, radius / s, float(_blob(draw, rng, centre, radius, fill)),
                        *(np.array(fill) / 255)))
    drawing = Drawing(category, np.array(objects, dtype=float).reshape(-1, 7), horizon / s,
                      np.array(structures, dtype=float).reshape(-1, 3), road, texture)
    return np.asarray(image.filter(ImageFilter.SMOOTH), dtype=np.uint8), drawing


def draw_image(image_name: str, category: str, size: int) -> np.ndarray:
    """The pixels of :func:`draw_stimulus`: (size, size, 3) uint8 RGB."""
    return draw_stimulus(image_name, category, size)[0]


def image_features(rgb: np.ndarray) -> np.ndarray:
    """The low-level family of one image (:data:`FEATURE_NAMES`): a fixed function of its pixels.

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


#: what each feature family holds, in order
OBJECT_NAMES: tuple[str, ...] = ("objects", "mean_size", "largest_size", "polygon_share", "mean_x", "mean_y",
                                 "spread", "red", "green", "blue", "is_coco", "is_imagenet", "is_scene")
SCENE_NAMES: tuple[str, ...] = ("horizon", "openness", "structures", "structure_height", "road", "ground_texture")
#: the feature families a ROI's responses can be planted from: low-level image statistics (pixels),
#: the drawn objects (number, size, shape, position) and the image's category, the scene layout
FAMILIES: dict[str, tuple[str, ...]] = {"lowlevel": FEATURE_NAMES, "object": OBJECT_NAMES, "scene": SCENE_NAMES}


def object_features(drawing: Drawing) -> np.ndarray:
    """The object family (:data:`OBJECT_NAMES`) of one drawn image: the number of objects, their
    mean and largest radius, the share drawn as polygons, their mean position and its spread
    (fractions of the side; 0.5 and 0 without objects), their mean colour (0-1; 0.5 without), and
    the category (one-hot).

    Returns ndarray, shape (13,), float64."""
    objects = drawing.objects
    if len(objects):
        position = objects[:, :2]
        summary = [len(objects), objects[:, 2].mean(), objects[:, 2].max(), objects[:, 3].mean(), *position.mean(axis=0),
                   float(np.sqrt(position.var(axis=0).sum())), *objects[:, 4:7].mean(axis=0)]
    else:
        summary = [0.0, 0.0, 0.0, 0.0, 0.5, 0.5, 0.0, 0.5, 0.5, 0.5]
    category = [float(drawing.category == name) for name in ("coco", "imagenet", "scenes")]
    return np.array(summary + category, dtype=np.float64)


def scene_features(drawing: Drawing) -> np.ndarray:
    """The scene family (:data:`SCENE_NAMES`) of one drawn image: the horizon's height, the openness
    (the sky's share of the image less what structures cover of it), the number and mean height of
    the structures, the road (0/1), the ground's texture amplitude.

    Returns ndarray, shape (6,), float64."""
    structures = drawing.structures
    covered = float(np.sum(np.minimum(structures[:, 1], 1.0) * np.minimum(structures[:, 2], drawing.horizon))) \
        if len(structures) else 0.0
    return np.array([drawing.horizon, max(drawing.horizon - covered, 0.0), len(structures),
                     structures[:, 2].mean() if len(structures) else 0.0, float(drawing.road), drawing.ground_texture])


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


def shared_content(image_names: list[str], dims: int, seed: int) -> np.ndarray:
    """Content every subject responds to beyond the features: (n_images, dims) N(0, 1), by image name."""
    return np.array([np.random.default_rng(name_seed("shared", seed, n)).standard_normal(dims) for n in image_names])


def rigid(rotation_deg: np.ndarray, translation_mm: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """A (4, 4) affine: scale, then rotate (x, y, z Euler angles, degrees), then translate (mm)."""
    out = np.eye(4)
    out[:3, :3] = Rotation.from_euler("xyz", rotation_deg, degrees=True).as_matrix() * scale
    out[:3, 3] = translation_mm
    return out


@dataclass(frozen=True)
class Anatomy:
    """A subject's brain in its T1w space, and where the scanner sees it.

    t1w_affine : (4, 4) voxel -> T1w mm of the T1w grid (fMRIPrep's runs, the ROI masks, GLMsingle)
    brain : (X, Y, Z) bool on the T1w grid; intensity : (X, Y, Z) template value in [0, 1]
    rois : {"LHEarlyVis": (X, Y, Z) bool, ...} the ten ROI masks (disjoint)
    raw_affine : (4, 4) voxel -> scanner mm of the native oblique grid of the raw runs
    raw_shape : (3,) that grid's shape
    """

    t1w_affine: np.ndarray
    brain: np.ndarray
    intensity: np.ndarray
    rois: dict[str, np.ndarray]
    raw_affine: np.ndarray
    raw_shape: tuple[int, int, int]

    @property
    def region(self) -> np.ndarray:
        """The planted visual region: the union of the ROIs, (X, Y, Z) bool."""
        return np.any(np.stack(list(self.rois.values())), axis=0)


def subject_anatomy(template: np.ndarray, template_affine: np.ndarray, brain_mask: np.ndarray, subject: str,
                    seed: int, voxel_size_mm: float, roi_radius_mm: float) -> Anatomy:
    """The subject's anatomy, seeded by (seed, subject).

    The MNI152 brain (``template``, ``brain_mask`` on ``template_affine``) is scaled by 0.95-1.05,
    rotated by a few degrees and shifted by up to 15 mm into the subject's T1w space, on a grid of
    BOLD5000's T1w shape (71 x 89 x 72 at 2 mm, scaled to ``voxel_size_mm``) centred on the brain.
    The raw grid (106 x 106 x 69 at 2 mm) is tilted by 10-20 degrees about x (an oblique
    acquisition) and centred on the head.
    """
    rng = np.random.default_rng(name_seed("anatomy", seed, subject))
    to_subject = rigid(rng.normal(0, 3.0, 3), rng.uniform(-15, 15, 3), rng.uniform(0.95, 1.05))
    centre_mni = (template_affine @ np.r_[np.argwhere(brain_mask).mean(axis=0), 1.0])[:3]
    centre = (to_subject @ np.r_[centre_mni, 1.0])[:3]
    factor = 2.0 / voxel_size_mm
    shape = tuple(int(round(n * factor)) for n in T1W_SHAPE_2MM)
    t1w_affine = np.diag([voxel_size_mm] * 3 + [1.0])
    t1w_affine[:3, 3] = centre - voxel_size_mm * (np.array(shape) - 1) / 2
    # T1w voxel -> template voxel, for resampling the template into the subject's space
    to_template = np.linalg.inv(template_affine) @ np.linalg.inv(to_subject) @ t1w_affine
    intensity = ndimage.affine_transform(template, to_template, output_shape=shape, order=1, mode="constant")
    brain = ndimage.affine_transform(brain_mask.astype(np.float32), to_template, output_shape=shape, order=1) > 0.5
    mni = (np.linalg.inv(to_subject) @ t1w_affine @ np.vstack([np.indices(shape).reshape(3, -1),
                                                                np.ones(int(np.prod(shape)))]))[:3].T
    rois = {}
    for hemisphere, sign in (("LH", 1.0), ("RH", -1.0)):
        for roi, (x, y, z) in ROI_CENTRES_MM.items():
            near = np.linalg.norm(mni - np.array([sign * x, y, z]), axis=1) <= roi_radius_mm
            rois[f"{hemisphere}{roi}"] = near.reshape(shape) & brain
    raw_shape = tuple(int(round(n * factor)) for n in RAW_SHAPE_2MM)
    raw_affine = rigid(np.array([rng.uniform(10, 20), 0.0, 0.0]), np.zeros(3)) @ np.diag([voxel_size_mm] * 3 + [1.0])
    raw_affine[:3, 3] = centre - raw_affine[:3, :3] @ ((np.array(raw_shape) - 1) / 2)
    return Anatomy(t1w_affine, brain, (intensity / max(intensity.max(), 1e-12)).astype(np.float32), rois,
                   raw_affine, raw_shape)


def head_motion(seed: int, subject: str, session: int, run: int, n_volumes: int) -> np.ndarray:
    """Where the head is in the scanner during each volume of a raw run: (n_volumes, 4, 4) affines
    mapping T1w mm to scanner mm.

    Each session displaces the head rigidly (rotations N(0, 4) degrees, shifts N(0, 6) mm, seeded by
    session): the raw runs of different sessions see the anatomy in different places. Within a run
    the head drifts slowly and linearly up to 0.5 mm and 0.5 degrees (seeded by run).
    """
    rng = np.random.default_rng(name_seed("session-head", seed, subject, session))
    session_pose = rigid(rng.normal(0, 4.0, 3), rng.normal(0, 6.0, 3))
    drift = np.random.default_rng(name_seed("run-drift", seed, subject, session, run))
    rotation_end, shift_end = drift.uniform(-0.5, 0.5, 3), drift.uniform(-0.5, 0.5, 3)
    fractions = np.linspace(0.0, 1.0, n_volumes)
    return np.stack([rigid(f * rotation_end, f * shift_end) @ session_pose for f in fractions])


@numba.njit(parallel=True, cache=True)
def _trilinear(volume: np.ndarray, mapping: np.ndarray, shape: tuple, out: np.ndarray) -> None:  # pragma: no cover
    n0, n1, n2 = shape
    s0, s1, s2 = volume.shape
    for i in numba.prange(n0):
        for j in range(n1):
            for k in range(n2):
                x = mapping[0, 0] * i + mapping[0, 1] * j + mapping[0, 2] * k + mapping[0, 3]
                y = mapping[1, 0] * i + mapping[1, 1] * j + mapping[1, 2] * k + mapping[1, 3]
                z = mapping[2, 0] * i + mapping[2, 1] * j + mapping[2, 2] * k + mapping[2, 3]
                x0, y0, z0 = int(np.floor(x)), int(np.floor(y)), int(np.floor(z))
                fx, fy, fz = x - x0, y - y0, z - z0
                total = 0.0
                for dx in range(2):
                    for dy in range(2):
                        for dz in range(2):
                            a, b, c = x0 + dx, y0 + dy, z0 + dz
                            if 0 <= a < s0 and 0 <= b < s1 and 0 <= c < s2:
                                weight = (fx if dx else 1 - fx) * (fy if dy else 1 - fy) * (fz if dz else 1 - fz)
                                total += weight * volume[a, b, c]
                out[i, j, k] = total


def sample_trilinear(volume: np.ndarray, mapping: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """``volume`` sampled at ``mapping @ [i, j, k, 1]`` for every voxel (i, j, k) of a grid of
    ``shape`` (trilinear; 0 outside the volume). mapping : (4, 4) output voxel -> input voxel.

    Hand-written (numba) rather than scipy's ``affine_transform``: the raw runs sample one volume per
    TR, and this is several times faster on the 106 x 106 x 69 grid. Returns float32 ``shape``.
    """
    out = np.empty(shape, dtype=np.float32)
    _trilinear(np.ascontiguousarray(volume, dtype=np.float32), np.asarray(mapping, dtype=np.float64), shape, out)
    return out


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


def beta_noise_factor(design: np.ndarray, tr_s: float, cutoff_s: float = 128.0) -> np.ndarray:
    """How white noise of unit sd enters single-trial OLS estimates: the Cholesky factor L (n_trials,
    n_trials) of the trials' block of (X'X)^-1, X the trial regressors plus the cosine drift and a
    constant. ``L @ z`` with z ~ N(0, 1) has the sampling distribution of the trials' betas of one
    voxel's run, in units of its noise sd."""
    n_volumes, n_trials = design.shape
    full = np.column_stack([design, drift_basis(n_volumes, tr_s, cutoff_s), np.ones(n_volumes)])
    covariance = np.linalg.inv(full.T @ full)[:n_trials, :n_trials]
    return np.linalg.cholesky(covariance)


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
    white_noise: bool = True,
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
    white_noise : add the white noise (False: the signal and drift only, for resampling into the raw
        grid, where the scanner's noise is added after)

    Returns
    -------
    ndarray, shape (n_volumes, n_brain_voxels), float32, intensity units
    """
    n_volumes, n_voxels = design.shape[0], baseline.shape[0]
    units = rng.standard_normal((n_volumes, n_voxels), dtype=np.float32) if white_noise else np.zeros(
        (n_volumes, n_voxels), dtype=np.float32)
    drift = drift_basis(n_volumes, tr_s)
    units += (drift @ rng.normal(0, drift_scale / np.sqrt(drift.shape[1]), (drift.shape[1], n_voxels))).astype(np.float32)
    if snr > 0:
        units[:, roi_columns] += (snr * design @ trial_patterns).astype(np.float32)
    units *= noise_sd.astype(np.float32)
    units += baseline.astype(np.float32)
    return units
