"""The project's results in the files of the field's tools: Net2Brain's RDM folders and results
table, Brain-Score's neural assembly (netCDF) and stimulus set, and a Brain-Score plugin skeleton.

Net2Brain (``net2brain.evaluations.rsa.RSA``) reads a folder of brain RDMs, one ``.npz`` per ROI
whose first array is (subjects, n, n), and a folder of model RDMs, one ``RDM_<layer>.npz`` (n, n)
per layer; it lists every file of those folders whose name has no ``.json``, so the image names
written beside each RDM are ``<roi>.json``. Brain-Score's vision benchmarks hold fMRI as a
``NeuroidAssembly`` (Allen2022_fmri): dims presentation x neuroid x time_bin, presentation coords
``stimulus_id`` and ``repetition``, neuroid coords naming each voxel, read from netCDF.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from neurolatent.errors import NeurolatentError
from neurolatent.io.files import atomic_file, write_csv, write_json, write_npz
from neurolatent.io.rdms import StoredRDM
from neurolatent.science.peers import NET2BRAIN_COLUMNS, net2brain_noise_ceiling, net2brain_row, rdm_ranks
from neurolatent.science.rsa.rdm import RDM
from neurolatent.science.stimuli import StimulusMatrix

#: Brain-Score's one time bin for a single-trial estimate: the image's 1 s on screen, ms
TIME_BIN_MS = (0, 1000)


def shared_images(names: list[tuple[str, ...]], order: tuple[str, ...]) -> tuple[str, ...]:
    """The images in every one of ``names`` (one tuple per subject), in ``order``'s order."""
    seen = set.intersection(*(set(n) for n in names)) if names else set()
    return tuple(name for name in order if name in seen)


def _square(item: RDM | StoredRDM, images: tuple[str, ...]) -> np.ndarray:
    """(n, n) of ``item`` over ``images`` (a StoredRDM read once); (0, 0) for no image (an RDM over
    none has no triangle)."""
    return item.subset(images).square() if images else np.zeros((0, 0))


def _file_safe(name: str) -> str:
    return name.replace("/", "__").replace(":", "_")


def write_brain_rdms(folder: Path, regions: dict[str, list[RDM | StoredRDM]],
                     images: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Net2Brain's brain RDMs: ``folder/<roi>.npz`` (its one array (subjects, n, n) over ``images``)
    and ``folder/<roi>.json`` (images, subjects, dissimilarity) for each ROI of ``regions`` ({ROI:
    one RDM per subject, each over at least ``images``; a :class:`StoredRDM` is read when its ROI is
    written}). Returns {ROI: the array}."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    stacks = {}
    for roi, rdms in regions.items():
        stacks[roi] = np.stack([_square(item, images) for item in rdms])
        write_npz({"arr_0": stacks[roi]}, Path(folder) / f"{_file_safe(roi)}.npz")
        write_json({"images": list(images), "subjects": [item.meta.get("subject", "") for item in rdms],
                    "dissimilarity": rdms[0].dissimilarity}, Path(folder) / f"{_file_safe(roi)}.json")
    return stacks


def write_model_rdms(folder: Path, models: dict[str, RDM | StoredRDM], layers: dict[str, tuple[str, str]],
                     images: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Net2Brain's model RDMs: ``folder/<Model>/RDM_<Layer>.npz`` (n, n) over ``images`` for each of
    ``models`` ({name: RDM}), ``layers`` giving each name's (Model, Layer). Returns {name: the array}."""
    squares = {}
    for name, item in models.items():
        model, layer = layers[name]
        squares[name] = _square(item, images)
        (Path(folder) / _file_safe(model)).mkdir(parents=True, exist_ok=True)
        write_npz({"arr_0": squares[name]}, Path(folder) / _file_safe(model) / f"RDM_{_file_safe(layer)}.npz")
    return squares


def net2brain_results(stacks: dict[str, np.ndarray], squares: dict[str, np.ndarray],
                      layers: dict[str, tuple[str, str]],
                      progress: Callable[[int], object] | None = None) -> pd.DataFrame:
    """Net2Brain's results table: :data:`NET2BRAIN_COLUMNS`, a row per ROI of ``stacks`` ({ROI:
    (subjects, n, n)}) x model of ``squares`` ({name: (n, n)}), in the order given; what
    ``RSA(model_rdms/<Model>, brain_rdms, <Model>, squared=False).evaluate()`` gives, less its
    R_array, with ROI and Layer named without its ``(i) `` prefixes and file names (``(0) RDM_3.npz``: ``3``). Fewer than 3 images or 2 subjects: no row
    (no statistic is defined). ``progress`` is called with 1 as each ROI and model's row is done
    (at BOLD5000's ~3,000 images the subjects share, a few seconds each: Net2Brain ranks every pair)."""
    rows, model_ranks = [], {}
    for roi, stack in stacks.items():
        if stack.shape[0] < 2 or stack.shape[1] < 3:
            if progress is not None:
                progress(len(squares))
            continue
        brain_ranks = [rdm_ranks(own) for own in stack]
        ceiling = net2brain_noise_ceiling(stack, brain_ranks)
        for name, square in squares.items():
            if name not in model_ranks:
                model_ranks[name] = rdm_ranks(square)
            # named as the files are, so RSA(model_rdms/<Model>, ..., <Model>) gives the same row
            rows.append({"ROI": _file_safe(roi), "Layer": _file_safe(layers[name][1]),
                         "Model": _file_safe(layers[name][0]),
                         **net2brain_row(square, stack, ceiling, model_ranks[name], brain_ranks)})
            if progress is not None:
                progress(1)
    return pd.DataFrame(rows, columns=list(NET2BRAIN_COLUMNS))


def neural_assembly(trials: dict[str, StimulusMatrix], voxels: pd.DataFrame, order: tuple[str, ...]):
    """Brain-Score's neural assembly of every subject's single-trial samples, an ``xarray.DataArray``.

    Parameters
    ----------
    trials : {subject: StimulusMatrix (n_trials, v_subject)}, rows in presentation order
    voxels : a row per (subject, column): subject, column, region, hemisphere, voxel_x, voxel_y,
        voxel_z (the voxel's index in the subject's mask grid), noise_ceiling (percent, NaN unknown)
    order : every image, in the order presentations are laid out (the stimulus table's)

    Returns
    -------
    DataArray (presentation, neuroid, time_bin) float32: one presentation per (image, repetition)
    any subject had (repetition: the 0-based count of the image's earlier presentations to that
    subject), NaN where a voxel's subject had no such presentation; coords ``stimulus_id`` and
    ``repetition`` (presentation), ``neuroid_id`` (``<subject>.<column>``), ``subject``, ``region``,
    ``hemisphere``, ``voxel_x/y/z``, ``noise_ceiling`` (neuroid), ``time_bin_start`` and
    ``time_bin_end`` (ms, :data:`TIME_BIN_MS`).
    """
    import xarray as xr

    rank = {name: i for i, name in enumerate(order)}
    keyed = {}
    for subject, matrix in trials.items():
        names = pd.Series(matrix.stimuli)
        missing = sorted(set(names) - set(rank))
        if missing:
            raise NeurolatentError(f"{subject}: image {missing[0]!r} is not in the stimulus table")
        keyed[subject] = pd.MultiIndex.from_arrays([names, names.groupby(names).cumcount()])
    union = sorted(set().union(*keyed.values()), key=lambda key: (rank[key[0]], key[1]))
    position = {key: i for i, key in enumerate(union)}
    columns = voxels.sort_values(["subject", "column"], kind="stable").reset_index(drop=True)
    values = np.full((len(union), len(columns)), np.nan, dtype=np.float32)
    for subject, index in keyed.items():
        own = columns.index[columns["subject"] == subject].to_numpy()
        wanted = columns.loc[own, "column"].to_numpy()
        if len(own) == 0 or wanted.max() >= trials[subject].matrix.shape[1]:
            raise NeurolatentError(f"{subject}: the voxel table and the samples disagree on its voxels")
        rows = np.array([position[key] for key in index])
        values[np.ix_(rows, own)] = trials[subject].matrix[:, wanted]
    neuroid = {"neuroid_id": ("neuroid", [f"{s}.{c}" for s, c in zip(columns["subject"], columns["column"])]),
               **{name: ("neuroid", columns[name].to_numpy()) for name in
                  ("subject", "region", "hemisphere", "voxel_x", "voxel_y", "voxel_z", "noise_ceiling")}}
    return xr.DataArray(values[:, :, None], dims=("presentation", "neuroid", "time_bin"), coords={
        "stimulus_id": ("presentation", [key[0] for key in union]),
        "repetition": ("presentation", np.array([key[1] for key in union], dtype=np.int64)), **neuroid,
        "time_bin_start": ("time_bin", [TIME_BIN_MS[0]]), "time_bin_end": ("time_bin", [TIME_BIN_MS[1]])},
        name="neurolatent_bold5000")


def write_assembly(assembly, path: Path) -> None:
    """``assembly`` as netCDF (classic format, scipy's writer: every netCDF reader opens it;
    ``xarray.open_dataarray`` gives it back), written atomically."""
    with atomic_file(Path(path)) as temp:
        assembly.to_netcdf(temp, engine="scipy")


def write_stimulus_set(stimuli: pd.DataFrame, raw_dir: Path, path: Path, relative_to: Path) -> pd.DataFrame:
    """Brain-Score's stimulus set as CSV at ``path``: ``stimulus_id`` (the image name, the assembly's
    ``stimulus_id``), ``image_file_name``, ``category`` and ``image_path`` (the image file, relative to
    ``relative_to``: the folder the CSV ends up in). stimuli : stimuli.parquet (image_name, category,
    image_path under raw_dir)."""
    base = Path(relative_to).resolve()
    table = pd.DataFrame({"stimulus_id": stimuli["image_name"].to_numpy(),
                          "image_file_name": [Path(p).name for p in stimuli["image_path"]],
                          "category": stimuli["category"].to_numpy(),
                          "image_path": [os.path.relpath(Path(raw_dir).resolve() / p, base)
                                         for p in stimuli["image_path"]]})
    write_csv(table, Path(path))
    return table


def write_plugin(templates: Path, out: Path, identifier: str, regions: list[str]) -> None:
    """Brain-Score's plugin layout under ``out``: ``data/<identifier>/__init__.py`` and
    ``benchmarks/<identifier>/__init__.py`` + ``benchmark.py``, from ``templates`` (files named
    ``data__init__.py``, ``benchmarks__init__.py``, ``benchmark.py``), with ``{identifier}`` filled
    in and each line holding ``{REGION}`` written once per region of ``regions``, filled in (Brain-Score
    finds a plugin by its literal registration lines)."""
    for template, target in (("data__init__.py", f"data/{identifier}/__init__.py"),
                             ("benchmarks__init__.py", f"benchmarks/{identifier}/__init__.py"),
                             ("benchmark.py", f"benchmarks/{identifier}/benchmark.py")):
        lines = []
        for line in (Path(templates) / template).read_text().replace("{identifier}", identifier).splitlines(True):
            lines += [line.replace("{REGION}", region) for region in regions] if "{REGION}" in line else [line]
        text = "".join(lines)
        (out / target).parent.mkdir(parents=True, exist_ok=True)
        (out / target).write_text(text)
