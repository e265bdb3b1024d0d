"""``params.yaml``, validated: the sections (:mod:`neurolatent.pipeline.params_sections`, where
every parameter is declared once) put together, the checks across sections, and reading the file.

Every stage reads its parameters through :func:`load_params`. An unknown key, a wrong type or an
impossible value fails at once with the key's dotted name (``data.synthetic.snr``) and the reason,
before any stage touches a file. The explanations are what ``neurolatent <stage> --help`` and
``docs/params.md`` show (:mod:`neurolatent.pipeline.params_docs` writes them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError, model_validator

from neurolatent.errors import NeurolatentError
from neurolatent.pipeline.params_sections import (AlignParams, ComputeParams, DataParams, EmbedParams, EncodeParams,
                                                  ExportParams, FmriAEParams, ImageAEParams, PreprocessParams,
                                                  RsaParams, StitchParams, Section)


class Params(Section):
    """The whole of params.yaml."""

    compute: ComputeParams = ComputeParams()
    data: DataParams = DataParams()
    preprocess: PreprocessParams = PreprocessParams()
    fmri_ae: FmriAEParams = FmriAEParams()
    image_ae: ImageAEParams = ImageAEParams()
    embed: EmbedParams = EmbedParams()
    rsa: RsaParams = RsaParams()
    stitch: StitchParams = StitchParams()
    encode: EncodeParams = EncodeParams()
    align: AlignParams = AlignParams()
    export: ExportParams = ExportParams()

    @model_validator(mode="before")
    @classmethod
    def _what_the_data_holds(cls, raw: Any) -> Any:
        """data.forms, preprocess.space and preprocess.mask left null (or out) take what the data
        holds (:func:`forms_held`), so a real copy runs with data.source and its folders alone."""
        if not isinstance(raw, dict) or not isinstance(raw.get("data", {}) or {}, dict) or not isinstance(
                raw.get("preprocess", {}) or {}, dict):
            return raw
        data, preprocess = dict(raw.get("data") or {}), dict(raw.get("preprocess") or {})
        if data.get("forms") is None:
            data["forms"] = forms_held(data)
        if preprocess.get("space") is None:
            preprocess["space"] = "T1w" if "T1w" in data["forms"] else "raw"
        if preprocess.get("mask") is None:
            preprocess["mask"] = ("region" if preprocess["space"] == "T1w" or preprocess.get("method") == "glmsingle"
                                  else "brain")
        return {**raw, "data": data, "preprocess": preprocess}

    @model_validator(mode="after")
    def _check_forms(self) -> "Params":
        """A mask meets only data in its own space; each method reads a form the dataset has."""
        preprocess, forms = self.preprocess, self.data.forms
        if preprocess.method == "glmsingle":
            if "glmsingle" not in forms:
                raise ValueError("preprocess.method: glmsingle reads the GLMsingle betas, but data.forms lacks "
                                 "glmsingle")
            return self
        if preprocess.space not in forms:
            raise ValueError(f"preprocess.space: {preprocess.space} runs are read, but data.forms lacks "
                             f"{preprocess.space}")
        if preprocess.space == "raw" and preprocess.mask == "region" and preprocess.method != "rendered":
            raise ValueError("preprocess.mask: region needs preprocess.space: T1w (the SPM ROI masks were drawn on "
                             "fMRIPrep's T1w-space data; raw runs sit in each session's scanner space, so a mask "
                             "carried over by affine misses the ROIs): set space: T1w, or mask: brain with raw runs")
        return self


def forms_held(data: dict[str, Any]) -> list[str]:
    """The forms a ``data`` section (as parsed from params.yaml) has: every form for the synthetic
    twin; for a real copy (``source: bids``), raw when ``bids_root`` holds raw runs, T1w when it
    holds fMRIPrep's T1w-space runs, glmsingle when ``glmsingle_root`` is set."""
    if data.get("source", "synthetic") != "bids":
        return ["raw", "T1w", "glmsingle"]
    if data.get("bids_root") is None:
        return ["raw", "T1w", "glmsingle"]  # DataParams says that bids needs a bids_root
    root = Path(data["bids_root"])
    forms = [form for form, pattern in (("raw", "sub-*/ses-*/func/*_task-5000scenes_run-*_bold.nii.gz"),
                                        ("T1w", "derivatives/fmriprep/sub-*/ses-*/func/*_bold_space-T1w_preproc.nii.gz"))
             if next(root.glob(pattern), None) is not None]
    if data.get("glmsingle_root") is not None:
        forms.append("glmsingle")
    if not forms:
        raise ValueError(f"data.bids_root: {root} holds neither raw runs (sub-*/ses-*/func/*_bold.nii.gz) nor "
                         "fMRIPrep's T1w-space runs, and data.glmsingle_root is not set: point it at a BOLD5000 copy, "
                         "or set data.forms")
    return forms


def _dotted(loc: tuple[Any, ...]) -> str:
    # pydantic puts union-member tags ("constrained-float") into the location: not keys, drop them
    return ".".join(str(part) for part in loc if isinstance(part, int) or str(part).isidentifier())


def validate_params(raw: dict[str, Any] | None, source: str = "params.yaml") -> Params:
    """Validate a parsed params mapping; raise NeurolatentError naming the first bad key."""
    try:
        return Params.model_validate(raw or {})
    except ValidationError as exc:
        first = exc.errors()[0]
        key = _dotted(first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown key"
        elif "input" in first and first["type"] != "missing" and not isinstance(first["input"], dict):
            message = f"{message} (got {first['input']!r})"
        # model-level checks put the key into their message ("sessions: ...")
        where = f"{key}." if key and first["type"] == "value_error" else (f"{key}: " if key else "")
        raise NeurolatentError(f"{source}: {where}{message}") from None


def yaml_error(exc: yaml.YAMLError) -> str:
    """``line L, column C: not valid YAML (the problem)`` from a parser error (1-based, as editors count)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}not valid YAML ({problem})"


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate ``params.yaml``."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise NeurolatentError(f"{path}: no such params file") from None
    except yaml.YAMLError as exc:
        raise NeurolatentError(f"{path}: {yaml_error(exc)}") from None
    if raw is None:
        raise NeurolatentError(f"{path}: empty params file (write `{{}}` to run on every default)")
    if not isinstance(raw, dict):
        raise NeurolatentError(f"{path}: expected a mapping of sections at the top level")
    return validate_params(raw, str(path))
