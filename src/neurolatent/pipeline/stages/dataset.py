"""Stage ``dataset``: ``data/raw/bold5000`` in BOLD5000's layout, by ``data.source``: the synthetic
twin (its planted truth in ``data/raw/truth``; :mod:`neurolatent.io.twin`), or a linked subset of a
real copy (:func:`neurolatent.io.bids_subset.link_subset`). Both folders appear whole or not at all.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

from neurolatent.io import bids, twin
from neurolatent.io.bids_subset import link_subset
from neurolatent.io.files import atomic_dir
from neurolatent.pipeline.parallel import parallel_map
from neurolatent.pipeline.progress import progress
from neurolatent.science.stats import zscore
from neurolatent.science.synthetic import TwinSettings


def run(params: SimpleNamespace, paths: SimpleNamespace) -> dict:
    """The stage on its declared ``params`` and ``paths`` (the registry's files); returns its metrics."""
    data = params.data
    if data.source == "bids":
        counts = link_subset(Path(data.bids_root), Path(data.stimuli_root),
                             None if data.glmsingle_root is None else Path(data.glmsingle_root), Path(paths.raw),
                             Path(paths.truth), subjects=list(data.subjects), sessions=data.sessions, runs=data.runs,
                             forms=list(data.forms), link=data.link, progress=progress)
    else:
        counts = _write_twin(data, params.compute, Path(paths.raw), Path(paths.truth))
    return {f"dataset.{name}": value for name, value in counts.items()}


def _write_twin(data: SimpleNamespace, compute: SimpleNamespace, out_dir: Path, truth_dir: Path) -> dict:
    """Every form of ``data.forms`` drawn from one planted truth; the runs written in parallel, in
    ``data.synthetic.jobs`` processes or on a Dask cluster (``compute.scheduler``)."""
    settings = TwinSettings(**data.synthetic.model_dump(exclude={"jobs"}, mode="json"))
    schedule = twin.selected_schedule(list(data.subjects), data.sessions, data.runs, settings.seed,
                                      settings.same_images, settings.repeats)
    stimuli = twin.stimulus_table(schedule)
    image_row = pd.Series(np.arange(len(stimuli)), index=stimuli["image_name"])
    template = twin.mni_template(settings.voxel_size_mm)
    with atomic_dir(out_dir) as root, atomic_dir(truth_dir) as truth:
        twin.write_top_files(root, list(data.subjects))
        families = twin.write_stimuli(stimuli, root, settings.image_size, progress)
        (root / bids.REPEATED_LIST).write_text("\n".join(twin.repeated_images()) + "\n")
        families_z = twin.response_features({name: zscore(values) for name, values in families.items()},
                                            list(stimuli["image_name"]), settings)
        subjects = {name: twin.plant_subject(name, template, families_z, settings) for name in data.subjects}
        for name, subject in subjects.items():
            twin.write_subject(root, truth, name, subject)
        runs = [rows for _, rows in schedule.groupby(["subject", "session", "run"], sort=True)]
        # an absolute root: a Dask worker may run in another folder
        parallel_map(partial(twin.write_run, root=root.absolute(), subjects=subjects, image_row=image_row,
                             forms=list(data.forms), params=settings), runs, data.synthetic.jobs, desc="runs",
                     unit="run", scheduler=compute.scheduler, address=compute.dask_address)
        if "glmsingle" in data.forms:
            for name, rows in schedule.groupby("subject", sort=True):
                twin.write_glmsingle(rows.reset_index(drop=True), root, subjects[name], name, image_row, settings)
        region_sizes = {name: int(subject.region_columns.size) for name, subject in subjects.items()}
        twin.write_truth(truth, stimuli, families, settings, list(data.forms), region_sizes)
    return {"runs": len(runs), "trials": len(schedule), "images": len(stimuli),
            "region_voxels": int(np.mean(list(region_sizes.values())))}
