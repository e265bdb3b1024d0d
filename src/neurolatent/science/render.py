"""The study's fMRI representation: each volume drawn as a nilearn ortho stat-map picture.

As the study drew it: ``plot_stat_map`` with ``display_mode="ortho"``, ``bg_img=None``,
``threshold=100``, no annotation, no cross, no colorbar, colour scale per volume, then resized to a
square. Two styles (:data:`STYLES`): ``study``, what the study's nilearn 0.10.4 drew (a 6.6 x 3.5 in
figure, colour map ``cold_hot``, views coronal, sagittal, axial; :func:`render_study_picture`), and
``nilearn``, today's nilearn look (``RdBu_r``, views sagittal, coronal, axial). Two engines:

- ``nilearn`` (:func:`render_nilearn`): calls nilearn and matplotlib, the reference;
- ``fast`` (:func:`render_fast`): the same geometry and colours computed with numpy for a batch of
  volumes, with no figure. It reproduces nilearn's steps: NaN and inf are 0; voxels with ``|v| <=
  threshold`` are not drawn (transparent); the colour scale is symmetric around 0 up to ``max |v|``
  when the volume has both signs and ``[min, max]`` otherwise (nilearn's ``symmetric_cbar="auto"``),
  mapped through the style's map with 256 levels; each view's limits are the bounding box of the
  supra-threshold voxels, the three axes get widths proportional to those boxes and shrink to
  equal aspect around their centres (matplotlib's ``aspect="equal"``, ``adjustable="box"``, anchor
  C); slices are drawn nearest-neighbour over the extent between the first and last voxel centres,
  placed and coloured by matplotlib's own arithmetic (:mod:`.raster`). The one shortcut is in
  finding the cut position (see :func:`_cut_components`); ``benchmarks/bench_render.py`` reports
  the pixel correlation with nilearn, ``benchmarks/render_study_match.py`` with nilearn 0.10.4.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import matplotlib

matplotlib.use("Agg")

import cc3d  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import nibabel as nib  # noqa: E402
import numba  # noqa: E402
import numpy as np  # noqa: E402
from nilearn.image import reorder_img  # noqa: E402
from nilearn.plotting import find_xyz_cut_coords, plot_stat_map  # noqa: E402
from PIL import Image  # noqa: E402

from neurolatent.science.constraints import Count, NonNegative, checked  # noqa: E402
from neurolatent.science.raster import agg_nearest, axes_boxes, colour_levels, pixel_grid  # noqa: E402

DPI = 100


@dataclass(frozen=True)
class Style:
    """How an ortho picture looks: the figure (inches at :data:`DPI`), the colour map, the views
    left to right (``x`` sagittal, ``y`` coronal, ``z`` axial), and how matplotlib puts each view's
    image on the pixel grid (``raster``, see :func:`.raster.pixel_grid`)."""

    figure_inches: tuple[float, float]
    colormap: str
    views: str
    raster: str


STYLES = {
    # today's nilearn (0.14) and matplotlib (3.11): nilearn's default map, views x, y, z, a 7.0 x 2.6 in figure
    "nilearn": Style((7.0, 2.6), "RdBu_r", "xyz", "matplotlib-3.11"),
    # the study's (its env_rw24.yml: nilearn 0.10.4, matplotlib 3.8.0): the default ortho figure of
    # 3 x (2.2 x 3.5) in, the default map cold_hot, and OrthoSlicer's view order of that version, y, x, z
    "study": Style((6.6, 3.5), "cold_hot", "yxz", "matplotlib-3.8"),
}


#: figures the fast engine draws before resizing them together
FIGURE_CHUNK = 8
#: volumes of a batch whose mean |v| the cut components are labelled on
COMPONENT_SAMPLE = 8
#: below this fraction of a volume's supra-threshold voxels inside the batch's component, the
#: volume's cut is found by nilearn itself
COMPONENT_SHARE = 0.95


def render_nilearn(volume: np.ndarray, affine: np.ndarray, size: int, threshold: float,
                   style: str = "nilearn") -> np.ndarray:
    """One volume drawn by this environment's nilearn (``plot_stat_map``), the reference of the fast engine.

    Parameters
    ----------
    volume : ndarray, shape (X, Y, Z), intensity units
    affine : ndarray, shape (4, 4), voxel -> mm
    size : side of the output picture, pixels
    threshold : values with absolute value at or below it are not drawn
    style : ``nilearn`` only: nilearn 0.14 lays the views out x, y, z and cannot draw the study's
        0.10.4 order (the fast engine can: ``render_fast(..., style="study")``)

    Returns
    -------
    ndarray, shape (3, size, size), uint8 RGB, channels first
    """
    if style != "nilearn":
        raise ValueError(f"style {style!r}: nilearn itself draws only today's layout; use the fast engine")
    look = STYLES[style]
    figure = plt.figure(figsize=look.figure_inches, dpi=DPI)
    try:
        plot_stat_map(nib.Nifti1Image(np.asarray(volume, dtype=np.float32), affine), bg_img=None,
                      display_mode="ortho", threshold=threshold, annotate=False, draw_cross=False,
                      colorbar=False, figure=figure, cmap=look.colormap)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=DPI, facecolor=figure.get_facecolor())
    finally:
        plt.close(figure)
    return _resize(Image.open(buffer), size)


def _resize(picture: Image.Image, size: int) -> np.ndarray:
    """A figure -> (3, size, size) uint8, PIL bilinear (the same resize for both engines)."""
    resized = picture.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.uint8).transpose(2, 0, 1)


@lru_cache(maxsize=4)
def _colour_table(colormap: str) -> np.ndarray:
    """A colour map at 256 levels plus white for undrawn voxels, each an RGBX pixel packed in a
    uint32: shape (257,), white last. Packed pixels make drawing one 4-byte gather per pixel.
    (nilearn registers ``cold_hot`` with matplotlib when nilearn.plotting is imported.)"""
    levels = matplotlib.colormaps[colormap].resampled(256)(np.arange(256))
    levels[:, 3] = 1.0
    table = (np.vstack([levels, [1.0, 1.0, 1.0, 1.0]]) * 255).astype(np.uint8)
    return table.view(np.uint32).ravel()


@numba.njit(cache=True, nogil=True, fastmath=True)
def _scan(volume, threshold, region, component):  # pragma: no cover - compiled
    """Everything the picture needs from one finite C-ordered volume (A, B, C), in one pass.

    Returns min, max; which planes along each axis hold a voxel with |v| > threshold; the centre
    of mass of |v| inside ``region`` (float32 0/1), in voxels, or -1s when that is empty; and the
    fraction of supra-threshold voxels inside ``component`` (float32 0/1). The inner loop has no
    branches (maxima and products only), so LLVM vectorises it.
    """
    n0, n1, n2 = volume.shape
    low, high = np.float32(np.inf), np.float32(-np.inf)
    peak0, peak1, peak2 = np.zeros(n0, np.float32), np.zeros(n1, np.float32), np.zeros(n2, np.float32)
    total, s0, s1, s2, above, inside = 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
    for a in range(n0):
        for b in range(n1):
            row, weights, members = volume[a, b], region[a, b], component[a, b]
            peak, weight_row, moment_row = np.float32(0.0), np.float32(0.0), np.float32(0.0)
            above_row, inside_row = np.float32(0.0), np.float32(0.0)
            for c in range(n2):
                value = row[c]
                low = min(low, value)
                high = max(high, value)
                magnitude = abs(value)
                peak2[c] = max(peak2[c], magnitude)
                peak = max(peak, magnitude)
                weight = magnitude * weights[c]
                weight_row += weight
                moment_row += c * weight
                supra = np.float32(magnitude > threshold)
                above_row += supra
                inside_row += supra * members[c]
            peak0[a] = max(peak0[a], peak)
            peak1[b] = max(peak1[b], peak)
            total += weight_row
            s0 += a * weight_row
            s1 += b * weight_row
            s2 += moment_row
            above += above_row
            inside += inside_row
    share = inside / above if above > 0 else 1.0
    centre = (s0 / total, s1 / total, s2 / total) if total > 0 else (-1.0, -1.0, -1.0)
    return low, high, peak0 > threshold, peak1 > threshold, peak2 > threshold, centre, share


@numba.njit(cache=True, nogil=True, fastmath=True)
def _accumulate(volume, magnitude_sum, signed_sum):  # pragma: no cover - compiled
    """Adds a C-ordered volume's |v| and v to the two running sums (float32, its shape), in one pass."""
    values, magnitudes, signs = volume.ravel(), magnitude_sum.ravel(), signed_sum.ravel()
    for k in range(values.size):
        magnitudes[k] += abs(values[k])
        signs[k] += values[k]


def _sample_means(volumes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean |v| and mean v of a few volumes (n, X, Y, Z), each (X, Y, Z) in the C-ordered view's axes
    (see :func:`_c_ordered`): one pass per volume, no stacked copy."""
    first = _c_ordered(volumes[0])[0]
    magnitude_sum, signed_sum = np.zeros(first.shape, np.float32), np.zeros(first.shape, np.float32)
    for volume in volumes:
        _accumulate(_c_ordered(volume)[0], magnitude_sum, signed_sum)
    return magnitude_sum / len(volumes), signed_sum / len(volumes)


def _c_ordered(volume: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int]]:
    """A C-contiguous view of a volume (NIfTI data is Fortran-ordered: its transpose) and the volume
    axis of each of the view's axes."""
    if volume.flags.c_contiguous:
        return volume, (0, 1, 2)
    if volume.flags.f_contiguous:
        return volume.T, (2, 1, 0)
    return np.ascontiguousarray(volume), (0, 1, 2)


def _cut_components(magnitude_mean: np.ndarray, signed_mean: np.ndarray,
                    threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """The two components nilearn's find_xyz_cut_coords weighs a volume in, from a batch's mean
    |volume| and mean volume.

    nilearn takes the largest connected component of the supra-threshold voxels (``component``),
    then the largest component of the voxels of it whose |v| exceeds |mean(v)| over it (the signed
    mean: for a volume of both signs it is near 0, not the mean of |v|; ``region``, if over 50
    voxels exceed it, else the first component), and cuts at the centre of mass of |v| there; with
    nothing above threshold, at the centre of mass of the whole volume. Labelling each volume is
    most of its cost; the fast engine labels once per batch (see :func:`render_fast`).
    Returns (region, component), float32 0/1 arrays shaped like ``magnitude_mean``.
    """
    first = _largest_component(magnitude_mean > threshold)
    if not first.any():
        first[:] = True
        return first.astype(np.float32), first.astype(np.float32)
    second = first & (magnitude_mean > np.abs(signed_mean[first].mean()))
    region = _largest_component(second) if second.sum() > 50 else first
    return region.astype(np.float32), first.astype(np.float32)


def _largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest face-connected component of a boolean mask (nilearn's connectivity), as a mask.

    cc3d, not scipy.ndimage.label: 2.0 ms against 12.6 ms on a 106 x 106 x 69 brain mask, most of
    the fast engine's fixed cost per batch (benchmarks/bench_render.py, 37 trial volumes).
    """
    return cc3d.largest_k(mask, k=1, connectivity=6, binary_image=True) > 0


#: (horizontal axis, vertical axis) of the volume shown by each view
VIEW_AXES = {"x": (1, 2), "y": (0, 2), "z": (0, 1)}


@lru_cache(maxsize=64)
def _layout(shape: tuple[int, int, int], spacing: tuple[float, float, float],
            origin: tuple[float, float, float], box: tuple[int, ...], style: Style) -> tuple[np.ndarray, ...]:
    """Which slice element each figure pixel shows, for one supra-threshold bounding box.

    shape, spacing (mm), origin (mm): the reordered volume's grid. box: the supra-threshold voxel
    slices (x0, x1, y0, y1, z0, z1), stops exclusive. Returns, for the three views in the style's
    order: the figure row and column of the view's top-left pixel, the slice index along the
    view's horizontal volume axis of each pixel column (i) and along its vertical volume axis of
    each pixel row, top row first (j). nilearn gives each view a width proportional to its
    horizontal extent, in the order the views are drawn (the same rule in 0.10.4 and 0.14).
    """
    height, width = int(style.figure_inches[1] * DPI), int(style.figure_inches[0] * DPI)
    # voxel-centre extent of each axis, and the mask bounds as nilearn's get_mask_bounds computes them
    low = np.asarray(origin)
    high = low + (np.asarray(shape) - 1) * np.asarray(spacing)
    limits = [(low[a] + box[2 * a] * (high[a] - low[a]) / shape[a],
               low[a] + box[2 * a + 1] * (high[a] - low[a]) / shape[a]) for a in range(3)]
    views = [VIEW_AXES[view] for view in style.views]
    result = []
    for (h, v), (left, bottom, right, top) in zip(views, axes_boxes(limits, views, (width, height))):
        span_h, span_v = limits[h][1] - limits[h][0], limits[v][1] - limits[v][0]
        first_column, across, drawn_i = pixel_grid(left, right, top - bottom, style.raster, width)
        first_row, down, drawn_j = pixel_grid(bottom, top, right - left, style.raster, height, vertical=True)
        u = limits[h][0] + across * span_h  # mm along the horizontal axis, left to right
        w = limits[v][1] - down * span_v  # mm along the vertical axis, top to bottom
        # image pixel coordinates (continuous) of each buffer pixel's centre
        column, row = (u - low[h]) / (high[h] - low[h]) * shape[h], (high[v] - w) / (high[v] - low[v]) * shape[v]
        if style.raster == "matplotlib-3.8":
            i, j = agg_nearest(column, along_span=True)[drawn_i], agg_nearest(row[:-1], along_span=False)[drawn_j]
        else:
            i, j = np.floor(column).astype(int), np.floor(row).astype(int)
        # origin="upper" on the rot90 slice: the top image row is the last voxel of the vertical axis
        j = shape[v] - 1 - j
        keep_i, keep_j = (i >= 0) & (i < shape[h]), (j >= 0) & (j < shape[v])
        # kept pixels form one rectangle: figure rows top..top+len(j), columns left..left+len(i)
        result.append((first_row + int(np.argmax(keep_j)), first_column + int(np.argmax(keep_i)), i[keep_i], j[keep_j]))
    return tuple(result)


def render_fast(volumes: np.ndarray, affine: np.ndarray, size: int, threshold: float,
                style: str = "nilearn") -> np.ndarray:
    """The ortho picture of each volume without matplotlib (see the module docstring).

    Parameters
    ----------
    volumes : ndarray, shape (n, X, Y, Z), intensity units; best one run's volumes at a time, since
        connected components are labelled once per call, on a sample of its volumes
    affine : ndarray, shape (4, 4), voxel -> mm; an oblique one is resampled as nilearn does
    size, threshold : as :func:`render_nilearn`
    style : a key of :data:`STYLES`: ``nilearn`` (today's look) or ``study`` (nilearn 0.10.4's)

    Returns
    -------
    ndarray, shape (n, 3, size, size), uint8 RGB
    """
    volumes = np.asarray(volumes, dtype=np.float32)
    if not np.isfinite(volumes).all():  # nilearn draws NaN and inf as 0 (safe_get_data's ensure_finite)
        volumes = np.nan_to_num(volumes, nan=0.0, posinf=0.0, neginf=0.0)
    linear = affine[:3, :3]
    # nilearn finds the cut and the colour range on the volume as given, then draws the slices
    # through the cut of the volume reordered (and, for an oblique affine, resampled) onto the axes:
    # both are found there too (on the resampled grid instead, an oblique volume of noise was cut
    # one slice off, r 0.82 with nilearn 0.10.4's picture, and coloured on the spline's overshoot)
    given, given_affine = volumes, affine
    if not (np.allclose(linear, np.diag(np.diag(linear))) and (np.diag(linear) > 0).all()):
        image = reorder_img(nib.Nifti1Image(np.moveaxis(volumes, 0, 3), affine), resample="continuous",
                            copy_header=True)
        volumes, affine = np.ascontiguousarray(np.moveaxis(np.asarray(image.dataobj, np.float32), 3, 0)), image.affine
    spacing = tuple(float(s) for s in np.diag(affine)[:3])
    origin = tuple(float(o) for o in affine[:3, 3])
    shape = volumes.shape[1:]
    look = STYLES[style]
    table = _colour_table(look.colormap)
    height, width = int(look.figure_inches[1] * DPI), int(look.figure_inches[0] * DPI)
    resampled = given is not volumes
    region, component = _cut_components(*_sample_means(given[:: max(1, len(given) // COMPONENT_SAMPLE)]),
                                        threshold)
    boxes, ranges, cuts = [], [], np.empty((len(volumes), 3), dtype=int)
    for k, volume in enumerate(volumes):
        view, axes = _c_ordered(volume)
        if resampled and k == 0:  # the resampled grid's scan gives the box and range only
            nowhere = np.zeros(view.shape, np.float32)
        low, high, *hits, centre, share = _scan(view, np.float32(threshold), nowhere if resampled else region,
                                                nowhere if resampled else component)
        if resampled:  # the cut's centre and the colour range from the volume as given
            given_view, given_axes = _c_ordered(given[k])
            low, high, *_, centre, share = _scan(given_view, np.float32(threshold), region, component)
            voxel = np.empty(3)
            voxel[list(given_axes)] = centre if centre[0] >= 0 else (np.array(given_view.shape) - 1) / 2
            world = given_affine @ [*voxel, 1.0]
        box = [0] * 6
        for hit, axis in zip(hits, axes):
            found = np.flatnonzero(hit)
            box[2 * axis: 2 * axis + 2] = [int(found[0]), int(found[-1]) + 1] if len(found) else [0, shape[axis]]
        boxes.append(tuple(box))
        ranges.append((-max(-low, high), max(-low, high)) if low < 0 < high else (low, high))
        if share < COMPONENT_SHARE:  # the batch's components do not describe this volume
            world = find_xyz_cut_coords(nib.Nifti1Image(given[k], given_affine), activation_threshold=threshold)
            cuts[k] = np.rint(np.linalg.solve(affine, [*world[:3], 1.0])[:3]).astype(int)
        elif resampled:
            cuts[k] = np.rint(np.linalg.solve(affine, world)[:3]).astype(int)
        else:
            cuts[k, list(axes)] = np.rint(centre if centre[0] >= 0 else (np.array(view.shape) - 1) / 2)
    out = np.empty((len(volumes), 3, size, size), dtype=np.uint8)
    # a few figures at a time: a reused buffer that stays in cache beats one figure per volume
    figures = np.empty((min(FIGURE_CHUNK, len(volumes)), height, width), dtype=np.uint32)
    for start in range(0, len(volumes), FIGURE_CHUNK):
        stop = min(start + FIGURE_CHUNK, len(volumes))
        for k in range(start, stop):
            volume, (low, high), figure = volumes[k], ranges[k], figures[k - start]
            figure[:] = table[256]
            x, y, z = cuts[k]
            slices = {"x": volume[x, :, :], "y": volume[:, y, :], "z": volume[:, :, z]}
            for (top, left, i, j), view in zip(_layout(shape, spacing, origin, boxes[k], look), look.views):
                cut = slices[view]
                drawn = np.abs(cut) > threshold
                level = colour_levels(cut, drawn, low, high, look.raster)
                level[~drawn] = 256
                shown = level.T[j][:, i]
                # undrawn voxels are transparent: where views share an edge pixel, the other view shows
                np.copyto(figure[top:top + len(j), left:left + len(i)], table[shown], where=shown != 256)
        _resize_into(figures[: stop - start], out[start:stop])
    return out


def _resize_into(figures: np.ndarray, out: np.ndarray) -> None:
    """Packed RGBX figures (n, H, W) uint32 -> ``out`` (n, 3, size, size) uint8.

    torch's antialiased bilinear resize on uint8 is PIL's BILINEAR filter (within one grey level;
    tested) and about four times faster than PIL at 672 px.
    """
    import torch

    channels = torch.from_numpy(figures.view(np.uint8).reshape(figures.shape + (4,)))  # (n, H, W, RGBX)
    resized = torch.nn.functional.interpolate(channels.permute(0, 3, 1, 2)[:, :3], size=out.shape[2:],
                                              mode="bilinear", antialias=True, align_corners=False)
    torch.from_numpy(out).copy_(resized)  # channels-last to channels-first, in parallel


@checked(engine=Literal["nilearn", "fast"], size=Count, threshold=NonNegative,
         style=Literal["nilearn", "study"])
def render_volumes(volumes: np.ndarray, affine: np.ndarray, engine: str, size: int, threshold: float,
                   style: str = "nilearn") -> np.ndarray:
    """Volumes (n, X, Y, Z) -> pictures (n, 3, size, size) uint8, drawn by ``engine`` (``nilearn``
    or ``fast``) in ``style``; size and threshold as :func:`render_nilearn`."""
    if engine == "fast":
        return render_fast(volumes, affine, size, threshold, style)
    return np.stack([render_nilearn(v, affine, size, threshold, style) for v in volumes])


def render_study_picture(volume: np.ndarray, affine: np.ndarray, size: int = 672) -> np.ndarray:
    """One volume as the study's autoencoder saw it, before its division by 255.

    What the study's code made: nilearn 0.10.4's ``plot_stat_map(img, bg_img=None, threshold=100,
    annotate=False, draw_cross=False, colorbar=False)`` saved as a 660 x 350 PNG (views coronal,
    sagittal, axial; colour map ``cold_hot``), squashed to size x size by torchvision's
    ``Resize`` (PIL bilinear), RGB. Checked against pictures made by nilearn 0.10.4 itself
    (``tests/data/render/``: four volumes and 108 drawn at random, every view r >= 0.98).

    Parameters
    ----------
    volume : ndarray, shape (X, Y, Z), float, intensity units
    affine : ndarray, shape (4, 4), voxel -> mm
    size : side of the square picture, pixels (the study: 672)

    Returns
    -------
    ndarray, shape (size, size, 3), uint8 RGB
    """
    return render_fast(np.asarray(volume, dtype=np.float32)[None], affine, size, 100.0, "study")[0].transpose(1, 2, 0)
