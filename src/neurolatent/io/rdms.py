"""RDMs on disk (``data/rdms``): one ``.npy`` upper triangle per RDM and ``index.json`` describing them.

:func:`load_rdms` gives them back as :class:`~neurolatent.science.rsa.rdm.RDM` (each over its own
images), or as one ``rsatoolbox.rdm.RDMs`` per representation over one common list of images
(:func:`rsatoolbox_rdms`); :func:`stored_rdms` as :class:`StoredRDM`, read when their cells are asked for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from neurolatent.errors import NeurolatentError
from neurolatent.io.files import save_npy, write_json
from neurolatent.science.rsa.rdm import EUCLIDEAN_FOR_RSATOOLBOX, RDM, union_vectors

#: index.json keys that are not the RDM's meta
_INDEX_KEYS = ("name", "file", "dissimilarity", "stimuli", "categories")


def _subject(item: RDM) -> str:
    """The subject of an fMRI RDM; ``all`` for an image model's (over the union, or no subject recorded)."""
    return item.meta.get("subject", "all")


def _file_name(name: str) -> str:
    return name.replace("/", "__").replace(":", "_") + ".npy"


def save_rdm(item: RDM, folder: Path, categories: dict[str, str] | None = None) -> dict:
    """One RDM's upper triangle as ``<name>.npy`` (float64) in ``folder``; returns its entry of
    ``index.json`` (:func:`write_index`): name, file, dissimilarity, stimuli, ``meta`` and, with
    ``categories`` ({image name: category}, naming every image), each stimulus's category, so that
    the index alone labels every image of the union (:func:`rsatoolbox_rdms`). Writing RDMs one at
    a time lets a caller drop each once it is written."""
    save_npy(item.upper, Path(folder) / _file_name(item.name))
    entry = {"name": item.name, "file": _file_name(item.name), "dissimilarity": item.dissimilarity,
             "stimuli": list(item.stimuli), **item.meta}
    if categories is not None:
        missing = [name for name in item.stimuli if name not in categories]
        if missing:
            raise NeurolatentError(f"RDM {item.name!r}: no category for image {missing[0]!r}")
        entry["categories"] = [categories[name] for name in item.stimuli]
    return entry


@dataclass(frozen=True)
class StoredRDM:
    """An RDM that :func:`save_rdm` wrote, read from its ``.npy`` file each time its cells are asked
    for, so that holding it costs its names only (at BOLD5000's 4,916 images an RDM's cells are
    97 MB): the rsa stage hands its RDMs to the comparisons this way, which read each when they
    need it (:func:`~neurolatent.science.rsa.family.group_family`). ``stimuli``, ``dissimilarity``,
    ``name``, ``meta`` and ``n`` are the RDM's; ``upper`` reads the cells, :meth:`load` the whole
    RDM, and ``subset`` and ``square`` are that RDM's (``subset`` in its own order: the RDM as read)."""

    path: Path
    stimuli: tuple[str, ...]
    dissimilarity: str
    name: str = ""
    meta: dict = field(default_factory=dict)

    @classmethod
    def saved(cls, item: RDM, folder: Path, categories: dict[str, str] | None = None) -> tuple["StoredRDM", dict]:
        """``item`` written by :func:`save_rdm` into ``folder``, as a StoredRDM, with its index entry."""
        entry = save_rdm(item, folder, categories)
        return cls(Path(folder) / entry["file"], item.stimuli, item.dissimilarity, item.name, item.meta), entry

    @property
    def n(self) -> int:
        """The number of stimuli."""
        return len(self.stimuli)

    @property
    def upper(self) -> np.ndarray:
        """The cells (read anew at each access)."""
        return self.load().upper

    def square(self) -> np.ndarray:
        """:meth:`RDM.square` of the RDM read from ``path``."""
        return self.load().square()

    def load(self) -> RDM:
        """The RDM, read from ``path``."""
        return RDM(np.load(self.path), self.stimuli, self.dissimilarity, self.name, dict(self.meta))

    def subset(self, stimuli: list[str] | tuple[str, ...]) -> RDM:
        """:meth:`RDM.subset` of the RDM read from ``path``."""
        return self.load().subset(stimuli)


def write_index(entries: list[dict], folder: Path) -> None:
    """``index.json`` of the RDMs :func:`save_rdm` wrote (its entries, in the order to list them)."""
    write_json(entries, Path(folder) / "index.json")


def save_rdms(rdms: list[RDM], folder: Path, categories: dict[str, str] | None = None) -> None:
    """Every RDM (:func:`save_rdm`) and ``index.json`` describing them, in the order given."""
    write_index([save_rdm(item, folder, categories) for item in rdms], folder)


def _read_index(folder: Path) -> tuple[list[StoredRDM], dict[str, str]]:
    """The RDMs that ``folder/index.json`` lists, as :class:`StoredRDM` in its order, and {image:
    category} of every image it labels (empty for an index written before categories were recorded)."""
    index_path = Path(folder) / "index.json"
    if not index_path.is_file():
        raise NeurolatentError(f"{index_path}: missing (run the rsa stage first)")
    stored, categories = [], {}
    for entry in json.loads(index_path.read_text()):
        meta = {k: v for k, v in entry.items() if k not in _INDEX_KEYS}
        stored.append(StoredRDM(Path(folder) / entry["file"], tuple(entry["stimuli"]), entry["dissimilarity"],
                                entry["name"], meta))
        categories.update(zip(entry["stimuli"], entry.get("categories", [])))
    return stored, categories


def stored_rdms(folder: Path) -> list[StoredRDM]:
    """The RDMs of ``data/rdms`` (see :func:`save_rdms`) in the index's order, as :class:`StoredRDM`:
    their names, images and meta held, their cells read when asked for, so that a caller going
    through them one at a time holds one (the export stage: 64 RDMs of 97 MB at BOLD5000's size)."""
    return _read_index(folder)[0]


def load_rdms(folder: Path, as_rsatoolbox: bool = False,
              images: Literal["union", "shared"] = "union") -> list[RDM] | dict:
    """The RDMs of ``data/rdms`` (see :func:`save_rdms`), read into memory.

    Parameters
    ----------
    folder : the rsa stage's ``data/rdms``
    as_rsatoolbox : bool
        False: a list of :class:`RDM`, each over its own images, in the index's order
        (``.to_rsatoolbox()`` converts one). True: {representation: ``rsatoolbox.rdm.RDMs``}, all
        over the same images (:func:`rsatoolbox_rdms`, with the categories the index records).
    images : ``union`` or ``shared``, with ``as_rsatoolbox`` (see :func:`rsatoolbox_rdms`)
    """
    stored, categories = _read_index(folder)
    out = [item.load() for item in stored]
    if not as_rsatoolbox:
        return out
    return rsatoolbox_rdms(out, categories or None, images)


def rsatoolbox_rdms(rdms: list[RDM], categories: dict[str, str] | None = None,
                    images: Literal["union", "shared"] = "union") -> dict:
    """One ``rsatoolbox.rdm.RDMs`` per representation, every one over the same images.

    A representation is an fMRI kind (an RDM whose ``meta["subject"]`` is a subject, named
    ``<kind>/<subject>``: ``ae``, ``samples``), holding one RDM per subject in the order given, or an
    image model (``meta["subject"]`` is ``all`` or absent), holding its one RDM.

    Parameters
    ----------
    rdms : RDMs over subsets of the images (the rsa stage's: per subject, and per model over the
        union of the images any subject saw)
    categories : {image name: category}, optional; when given it must name every image
    images : ``union`` or ``shared``
        ``union``: every image of any RDM, in the order of the longest RDM's stimuli (the model
        RDMs': the stimulus table's), then first appearance; a pair an RDM lacks (a subject that
        did not see both images) is NaN, as in the noise ceiling
        (:func:`~neurolatent.science.rsa.rdm.union_vectors`).
        ``shared``: only the images every subject saw (that every fMRI RDM has; every RDM's when
        there is none), in the same order; no NaN.

    Returns
    -------
    dict {representation: rsatoolbox.rdm.RDMs}
        Each with ``dissimilarities`` of shape (n_rdm, n_images * (n_images - 1) / 2), float64;
        ``rdm_descriptors`` ``subject`` (``all`` for a model), ``space`` (``fmri`` or ``image``),
        ``model`` (the fMRI kind or the model's name) and ``name``; ``pattern_descriptors``
        ``image_name`` and, with ``categories``, ``category``; ``dissimilarity_measure`` as
        :meth:`RDM.to_rsatoolbox` names it (our plain euclidean distance is
        ``EUCLIDEAN_FOR_RSATOOLBOX``, not rsatoolbox's ``euclidean``). ``.sort_by(category="alpha")``
        groups the images by category for ``rsatoolbox.vis.show_rdm``, which draws NaN blank; give it
        ``vmin``, ``vmax`` (``np.nanmin``, ``np.nanmax``) with ``show_colorbar="figure"``, whose own are
        NaN when any cell is. Memory: 8 bytes a cell, about 97 MB per RDM over BOLD5000's 4,916 images.

    Notes
    -----
    rsatoolbox 0.3.2 compares two ``RDMs`` only when their NaN cells coincide: ``compare`` (and so
    every ``rsatoolbox.inference.eval_*``) leaves out every cell that is NaN in any RDM of either
    argument, and raises ValueError ("different nan positions") when the NaN cells of the two
    arguments differ (a model RDM without NaN against subjects with some); ``boot_noise_ceiling``
    compares each subject with the pool of the others, whose NaN cells differ from its own as soon
    as subjects saw different images. So the ``union`` RDMs of subjects who saw different images
    cannot be evaluated as one ``RDMs``: draw them, pool them, or evaluate one subject at a time,
    ``rdms[kind].subset("subject", s).subset_pattern("image_name", its images)`` (the ``stimuli`` of
    its :class:`RDM`) against the models restricted alike: the rsa stage's per-subject comparison.
    ``shared`` can: every subject is then evaluated on the pairs of the images all subjects saw,
    which is the rsa stage's per-subject comparison only when every subject saw the same images.
    Real BOLD5000's four subjects share 2,952 images; the demo's (session 1, runs 1-3) share none,
    and ``shared`` raises.
    """
    from rsatoolbox.rdm import RDMs

    if not rdms:
        raise NeurolatentError("no RDMs to convert")
    names = list(dict.fromkeys(name for item in sorted(rdms, key=lambda r: -r.n) for name in item.stimuli))
    fmri = [item for item in rdms if _subject(item) != "all"]
    if images == "shared":
        seen = set.intersection(*(set(item.stimuli) for item in fmri or rdms))
        names = [name for name in names if name in seen]
        if len(names) < 2:
            raise NeurolatentError(f"the subjects share {len(names)} image(s): no pair to compare (evaluate one "
                                   "subject at a time over its own images, see rsatoolbox_rdms)")
    elif images != "union":
        raise ValueError(f"unknown images {images!r} (union or shared)")
    if categories is not None:
        missing = [name for name in names if name not in categories]
        if missing:
            raise NeurolatentError(f"no category for image {missing[0]!r}")
    groups: dict[str, list[RDM]] = {}
    for item in rdms:
        is_fmri = _subject(item) != "all"
        key = item.name.rsplit("/", 1)[0] if is_fmri else item.name
        # only the subjects of one fMRI kind share a representation
        if key in groups and not (is_fmri and _subject(groups[key][0]) != "all"):
            raise NeurolatentError(f"two representations are named {key!r} (an image model and an fMRI kind, "
                                   "or a model twice)")
        groups.setdefault(key, []).append(item)
    keep = set(names)
    out = {}
    for representation, members in groups.items():
        measures = {item.dissimilarity for item in members}
        if len(measures) > 1:
            raise NeurolatentError(f"{representation}: RDMs of different dissimilarities {sorted(measures)}")
        measure = measures.pop()
        # as RDM.to_rsatoolbox: rsatoolbox's own "euclidean" is another quantity
        measure = EUCLIDEAN_FOR_RSATOOLBOX if measure == "euclidean" else measure
        # with images="shared" each RDM first loses the images not every subject saw
        kept = [item if keep.issuperset(item.stimuli) else item.subset([s for s in item.stimuli if s in keep])
                for item in members]
        subjects = [_subject(item) for item in members]
        pattern = {"image_name": list(names)}
        if categories is not None:
            pattern["category"] = [categories[name] for name in names]
        out[representation] = RDMs(
            union_vectors(kept, names), dissimilarity_measure=measure,
            rdm_descriptors={"subject": subjects, "space": ["image" if s == "all" else "fmri" for s in subjects],
                             "model": [representation] * len(members), "name": [item.name for item in members]},
            pattern_descriptors=pattern)
    return out
