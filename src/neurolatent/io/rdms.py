"""RDMs on disk (``data/rdms``): one ``.npy`` upper triangle per RDM and ``index.json`` describing them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from neurolatent.errors import NeurolatentError
from neurolatent.io.files import save_npy, write_json
from neurolatent.science.rsa import RDM


def _file_name(name: str) -> str:
    return name.replace("/", "__").replace(":", "_") + ".npy"


def save_rdms(rdms: list[RDM], folder: Path) -> None:
    """Each RDM's upper triangle as ``<name>.npy`` (float64) and ``index.json`` describing them."""
    index = []
    for item in rdms:
        save_npy(item.upper, Path(folder) / _file_name(item.name))
        index.append({"name": item.name, "file": _file_name(item.name), "dissimilarity": item.dissimilarity,
                      "stimuli": list(item.stimuli), **item.meta})
    write_json(index, Path(folder) / "index.json")


def load_rdms(folder: Path) -> list[RDM]:
    """The RDMs of ``data/rdms`` (see :func:`save_rdms`); ``.to_rsatoolbox()`` converts each."""
    index_path = Path(folder) / "index.json"
    if not index_path.is_file():
        raise NeurolatentError(f"{index_path}: missing (run the rsa stage first)")
    out = []
    for entry in json.loads(index_path.read_text()):
        meta = {k: v for k, v in entry.items() if k not in ("name", "file", "dissimilarity", "stimuli")}
        out.append(RDM(np.load(Path(folder) / entry["file"]), tuple(entry["stimuli"]), entry["dissimilarity"],
                           entry["name"], meta))
    return out
