"""Volumes drawn at random, from a fixed seed, to compare ``render_study_picture`` with nilearn 0.10.4.

numpy alone (no scipy, no project code), so that the study's environment (make_reference_pictures.py
``drawn``) and the project's test (tests/science/test_render.py) draw the same volumes: only
nilearn's pictures of them are committed. Each volume has its own generator, ``default_rng([SEED,
k])``, so any one of them can be drawn again alone.

Six kinds (intensity units, threshold 100 as the study's):

- ``bold``: positive BOLD-like, a smooth ellipsoidal brain of 300-3000 with noise, the background 0
  or faint (< 100);
- ``noise``: signed i.i.d. Gaussian noise (sd 200-1000) over the grid or an ellipsoid;
- ``smooth``: a signed smooth field (Gaussian-smoothed noise, sd 150-900, an offset up to 1 sd);
- ``blobs``: 1-6 Gaussian blobs of either sign on 0 (or on noise below threshold);
- ``ties``: constant boxes, some exactly at +-100 (not drawn), two of the same size and value (a
  tie for the largest component), integer values;
- ``nan``: a bold or smooth volume with NaN outside an ellipsoid and at a few voxels inside.

Four kinds of grid: ``axis`` (axis-aligned, 2, 3 or 2 x 2 x 2.5 mm, an axis flipped at times, 24-80
voxels an axis), ``mni`` (the MNI152 2 mm grid, 91 x 109 x 91), ``oblique`` (a random rotation of up
to 25 degrees, 30-70 voxels an axis) and ``bold5000`` (BOLD5000's native run grid, 106 x 106 x 69 at
2 mm, tilted 16 degrees about x; or the same shape axis-aligned).
"""

from __future__ import annotations

import numpy as np

SEED = 41
COUNT = 108
KINDS = ("bold", "noise", "smooth", "blobs", "ties", "nan")
#: BOLD5000's native functional grid (the synthetic twin's raw run, tests/data/render/raw_native.nii.gz)
BOLD5000_SHAPE = (106, 106, 69)
BOLD5000_AFFINE = np.array([[2.0, 0.0, 0.0, -103.24040985],
                            [0.0, 1.92156744, -0.55459774, -108.79863739],
                            [0.0, 0.55459774, 1.92156744, -95.85816193],
                            [0.0, 0.0, 0.0, 1.0]])
MNI_SHAPE = (91, 109, 91)
MNI_AFFINE = np.array([[2.0, 0, 0, -90], [0, 2, 0, -126], [0, 0, 2, -72], [0, 0, 0, 1]])


def _centred(shape: tuple[int, ...], linear: np.ndarray) -> np.ndarray:
    """An affine with this linear part whose grid's centre is at 0 mm."""
    affine = np.eye(4)
    affine[:3, :3] = linear
    affine[:3, 3] = -linear @ ((np.asarray(shape) - 1) / 2)
    return affine


def _grid(rng: np.random.Generator) -> tuple[str, tuple[int, int, int], np.ndarray]:
    """(grid name, shape, affine voxel -> mm)."""
    grid = rng.choice(["axis", "mni", "oblique", "bold5000"], p=[0.5, 0.1, 0.3, 0.1])
    if grid == "mni":
        return "mni", MNI_SHAPE, MNI_AFFINE.copy()
    if grid == "bold5000":
        if rng.random() < 0.5:
            return "bold5000", BOLD5000_SHAPE, BOLD5000_AFFINE.copy()
        return "bold5000-axis", BOLD5000_SHAPE, _centred(BOLD5000_SHAPE, np.diag([2.0, 2.0, 2.0]))
    if grid == "axis":
        shape = tuple(int(n) for n in rng.integers(24, 81, 3))
        spacing = np.array([[2.0, 2, 2], [3, 3, 3], [2, 2, 2.5]])[rng.integers(3)]
        signs = np.where(rng.random(3) < 0.2, -1.0, 1.0)
        return "axis", shape, _centred(shape, np.diag(spacing * signs))
    shape = tuple(int(n) for n in rng.integers(30, 71, 3))
    angles = np.deg2rad(rng.uniform(-25, 25, 3))
    rotation = np.eye(3)
    for axis, angle in enumerate(angles):
        c, s = np.cos(angle), np.sin(angle)
        turn = np.eye(3)
        a, b = [k for k in range(3) if k != axis]
        turn[a, a], turn[a, b], turn[b, a], turn[b, b] = c, -s, s, c
        rotation = rotation @ turn
    return "oblique", shape, _centred(shape, rotation * rng.choice([2.0, 3.0]))


def _smooth(field: np.ndarray, sigma: float) -> np.ndarray:
    """Near-Gaussian smoothing (sd ``sigma`` voxels, zero padding): three box filters along each axis,
    as differences of cumulative sums (sequential sums: the same bits under any numpy)."""
    radius = max(1, int(round(np.sqrt(sigma**2 + 1) - 0.5)))  # three boxes of 2r + 1: variance r(r + 1)
    for axis in range(3):
        along = np.moveaxis(field, axis, 0)
        for _ in range(3):
            total = np.zeros((along.shape[0] + 2 * radius + 1,) + along.shape[1:])
            np.cumsum(along, axis=0, out=total[radius + 1: radius + 1 + along.shape[0]])
            total[radius + 1 + along.shape[0]:] = total[radius + along.shape[0]]
            along = (total[2 * radius + 1:] - total[: along.shape[0]]) / (2 * radius + 1)
        field = np.moveaxis(along, 0, axis)
    return field


def _ellipsoid(rng: np.random.Generator, shape: tuple[int, ...], size: tuple[float, float]) -> np.ndarray:
    """A boolean ellipsoid with radii ``size`` (fractions of the shape) around a jittered centre."""
    grid = np.indices(shape, dtype=float)
    centre = (np.asarray(shape) - 1) / 2 + rng.uniform(-0.1, 0.1, 3) * np.asarray(shape)
    radii = rng.uniform(*size, 3) * np.asarray(shape)
    return sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii)) <= 1.0


def _bold(rng, shape):
    brain = _ellipsoid(rng, shape, (0.3, 0.45))
    tissue = 1.0 + 8.0 * _smooth(rng.standard_normal(shape), 2.5) + 0.05 * rng.standard_normal(shape)
    volume = np.where(brain, rng.uniform(300, 3000) * np.clip(tissue, 0.1, None), 0.0)
    if rng.random() < 0.5:  # faint background, below threshold
        volume = np.where(brain, volume, rng.uniform(0, 90, shape))
    return volume


def _noise(rng, shape):
    volume = rng.uniform(200, 1000) * rng.standard_normal(shape)
    return volume if rng.random() < 0.5 else np.where(_ellipsoid(rng, shape, (0.3, 0.5)), volume, 0.0)


def _smooth_signed(rng, shape):
    field = _smooth(rng.standard_normal(shape), rng.uniform(1.0, 4.0))
    field /= field.std()
    return rng.uniform(150, 900) * (field + rng.uniform(-1, 1))


def _blobs(rng, shape):
    grid = np.indices(shape, dtype=float)
    volume = np.zeros(shape)
    for _ in range(rng.integers(1, 7)):
        centre = rng.uniform(0.1, 0.9, 3) * (np.asarray(shape) - 1)
        width = rng.uniform(1.0, 5.0)
        amplitude = rng.choice([-1, 1]) * rng.uniform(150, 3000)
        volume += amplitude * np.exp(-0.5 * sum(((g - c) / width) ** 2 for g, c in zip(grid, centre)))
    if rng.random() < 0.5:
        volume += rng.uniform(-60, 60, shape)
    return volume


def _ties(rng, shape):
    volume = np.zeros(shape)
    if rng.random() < 0.5:
        volume += rng.integers(-100, 101, shape)  # at or below threshold everywhere: never drawn
    n = np.asarray(shape)
    for _ in range(rng.integers(2, 6)):
        size = rng.integers(2, np.maximum(3, n // 3))
        start = rng.integers(0, n - size)
        value = rng.choice([100.0, -100.0, 101.0, 150.0, -150.0, 500.0, 1000.0, -1000.0])
        volume[tuple(slice(s, s + z) for s, z in zip(start, size))] = value
    # two boxes of the same size and value apart from each other: a tie for the largest component
    size = rng.integers(2, np.maximum(3, n // 5))
    value = rng.choice([300.0, -300.0])
    for start in (np.zeros(3, int), n - size):
        volume[tuple(slice(s, s + z) for s, z in zip(start, size))] = value
    return volume


def _nan(rng, shape):
    volume = _bold(rng, shape) if rng.random() < 0.5 else _smooth_signed(rng, shape)
    volume[~_ellipsoid(rng, shape, (0.3, 0.5))] = np.nan
    volume[rng.random(shape) < 0.01] = np.nan
    return volume


DRAW = {"bold": _bold, "noise": _noise, "smooth": _smooth_signed, "blobs": _blobs, "ties": _ties, "nan": _nan}


def volume(k: int, seed: int = SEED) -> tuple[str, str, str, np.ndarray, np.ndarray]:
    """The k-th volume: (name, kind, grid, volume (X, Y, Z) float32 intensity units, affine (4, 4) voxel -> mm)."""
    rng = np.random.default_rng([seed, k])
    kind = KINDS[k % len(KINDS)]
    grid, shape, affine = _grid(rng)
    data = DRAW[kind](rng, shape).astype(np.float32)
    return f"{k:03d}_{kind}_{grid}", kind, grid, data, affine


def volumes(count: int = COUNT, seed: int = SEED):
    """Every volume, in order (a generator of :func:`volume`'s tuples)."""
    return (volume(k, seed) for k in range(count))


# --- comparing a picture with nilearn's (the project's side: PIL, the committed drawn/ fixtures) ---

DRAWN = __import__("pathlib").Path(__file__).resolve().parent / "drawn"
#: nilearn 0.10.4's figure (pixels, width x height) and the study's square picture (pixels a side)
FIGURE, SIZE = (660, 350), 672


def index() -> dict:
    """drawn/index.json: per volume name its kind, grid, nilearn's cut (mm) and axes (figure pixels)."""
    import json

    return json.loads((DRAWN / "index.json").read_text())["volumes"]


def study_picture(name: str) -> np.ndarray:
    """nilearn 0.10.4's picture of volume ``name`` as the study fed it: its 660 x 350 figure squashed
    to 672 x 672 (PIL bilinear, RGB). Returns (672, 672, 3) uint8."""
    from PIL import Image

    figure = Image.open(DRAWN / f"{name}.png").convert("RGB")
    return np.asarray(figure.resize((SIZE, SIZE), Image.Resampling.BILINEAR))


def pixel_r(first: np.ndarray, second: np.ndarray) -> float:
    """Pearson r over every pixel and channel; two constant pictures: 1 if equal, else 0."""
    a, b = first.ravel().astype(float), second.ravel().astype(float)
    if a.std() == 0 or b.std() == 0:
        return float(np.array_equal(a, b))
    return float(np.corrcoef(a, b)[0, 1])


def panels(picture: np.ndarray, axes_px: list) -> list[np.ndarray]:
    """The three views of a (672, 672, 3) study picture, left to right: each view's axes (figure
    pixels left, top, right, bottom, from index()) scaled to the square, widened to whole pixels."""
    sx, sy = SIZE / FIGURE[0], SIZE / FIGURE[1]
    return [picture[int(np.floor(top * sy)):int(np.ceil(bottom * sy)),
                    int(np.floor(left * sx)):int(np.ceil(right * sx))]
            for left, top, right, bottom in axes_px]


def compare(ours: np.ndarray, name: str, entry: dict) -> tuple[float, list[float]]:
    """(r of the whole picture, r of each view) between ``ours`` (672, 672, 3) and nilearn's."""
    theirs = study_picture(name)
    return pixel_r(ours, theirs), [pixel_r(a, b) for a, b in zip(panels(ours, entry["axes_px"]),
                                                                   panels(theirs, entry["axes_px"]))]
