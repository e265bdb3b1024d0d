"""``params.yaml``, validated. Every stage reads its parameters through :func:`load_params`.

An unknown key, a wrong type or an impossible value fails at once with the key's dotted name
(``data.synthetic.snr``) and the reason, before any stage touches a file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from neurolatent.io.bids import MAX_RUNS_PER_SESSION, N_SESSIONS, SUBJECTS
from neurolatent.errors import NeurolatentError

Subject = Literal["CSI1", "CSI2", "CSI3", "CSI4"]
#: BOLD5000's three forms: raw BIDS runs (scanner space of each session), fMRIPrep's T1w-space
#: derivatives with the SPM ROI masks, the GLMsingle single-trial betas of release 2.0
Form = Literal["raw", "T1w", "glmsingle"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _no_yes_no_for_numbers(cls, data: Any) -> Any:
        # pydantic reads YAML's true as 1 for an int field: `permutations: true` would run one
        for key, value in (data.items() if isinstance(data, dict) else ()):
            field = cls.model_fields.get(key)
            if isinstance(value, bool) and field is not None and bool not in (field.annotation, *get_args(field.annotation)):
                raise ValueError(f"{key}: {str(value).lower()} is not a valid value (a number or a name is expected)")
        return data


class SyntheticParams(_Section):
    """The synthetic BOLD5000: procedurally drawn stimuli and BOLD with a planted signal."""

    seed: Annotated[int, Field(ge=0)] = 0
    #: sd of a voxel's trial-to-trial peak response over its noise sd; 0 = no stimulus signal at all
    snr: Annotated[float, Field(ge=0, le=1000)] = 1.0
    #: voxel size of the grids (BOLD5000: 2 mm; raw 106x106x69, T1w 71x89x72 at 2 mm, scaled)
    voxel_size_mm: Annotated[int, Field(ge=1, le=8)] = 2
    #: side of the square stimulus images, pixels
    image_size: Annotated[int, Field(ge=32, le=1024)] = 128
    #: radius of each of the ten ROI spheres (five ROIs x two hemispheres) of the planted region, mm
    #: (at most 10: the left and right EarlyVis spheres are 20 mm apart and must not overlap)
    roi_radius_mm: Annotated[float, Field(gt=0, le=10)] = 7.0
    #: voxel noise sd as a percentage of the voxel's baseline intensity (median over voxels)
    noise_percent: Annotated[float, Field(gt=0, le=50)] = 1.0
    #: amplitude of the slow scanner drift, in units of each voxel's noise sd
    drift_scale: Annotated[float, Field(ge=0, le=100)] = 2.0
    #: processes writing runs in parallel
    jobs: Annotated[int, Field(ge=1, le=64)] = 2


class DataParams(_Section):
    """Which part of BOLD5000 the pipeline runs on, and where it comes from."""

    source: Literal["synthetic", "bids"] = "synthetic"
    subjects: Annotated[list[Subject], Field(min_length=1)] = list(SUBJECTS)
    #: functional session numbers; null = all of each subject's sessions
    sessions: list[Annotated[int, Field(ge=1, le=15)]] | None = [1]
    #: run numbers within each session; null = all runs. A run a session lacks is skipped.
    runs: list[Annotated[int, Field(ge=1, le=MAX_RUNS_PER_SESSION)]] | None = [1, 2, 3]
    #: a real BOLD5000 copy (OpenNeuro ds001499) when source is bids
    bids_root: str | None = None
    #: the stimulus release folder that holds ``Scene_Stimuli/`` (BOLD5000_Stimuli)
    stimuli_root: str | None = None
    #: the GLMsingle release 2.0 folder (ROI betas, session betas, brain masks, presentation lists),
    #: searched by file name, when source is bids and forms include glmsingle
    glmsingle_root: str | None = None
    #: the forms the dataset stage writes (synthetic) or links (bids): the raw runs, fMRIPrep's T1w
    #: derivatives with the SPM ROI masks, the GLMsingle betas
    forms: Annotated[list[Form], Field(min_length=1)] = ["raw", "T1w", "glmsingle"]
    #: real files are linked into data/raw (hardlink falls back to copy across filesystems)
    link: Literal["hardlink", "copy"] = "hardlink"
    synthetic: SyntheticParams = SyntheticParams()

    @model_validator(mode="after")
    def _check_selection(self) -> "DataParams":
        if len(set(self.subjects)) != len(self.subjects):
            raise ValueError("subjects: a subject is listed twice")
        for subject in self.subjects:
            for session in self.sessions or []:
                if session > N_SESSIONS[subject]:
                    raise ValueError(
                        f"sessions: session {session} does not exist for {subject} "
                        f"(it has sessions 1-{N_SESSIONS[subject]})"
                    )
        if self.source == "bids" and (self.bids_root is None or self.stimuli_root is None):
            raise ValueError("source: 'bids' needs both data.bids_root and data.stimuli_root")
        if len(set(self.forms)) != len(self.forms):
            raise ValueError("forms: a form is listed twice")
        if self.source == "bids" and "glmsingle" in self.forms and self.glmsingle_root is None:
            raise ValueError("forms: glmsingle from a real copy needs data.glmsingle_root (the release 2.0 folder); "
                             "or drop glmsingle from data.forms")
        return self


ROI_NAMES = ("EarlyVis", "LOC", "OPA", "PPA", "RSC")


class RenderParams(_Section):
    """The study's representation: each fMRI volume drawn as a nilearn ortho stat-map picture."""

    #: nilearn: plot_stat_map itself, the reference; fast: the same picture drawn with numpy
    engine: Literal["nilearn", "fast"] = "nilearn"
    #: nilearn: today's nilearn picture; study: the study's (nilearn 0.10.4: cold_hot, a 660 x 350 px
    #: figure, views coronal-sagittal-axial), drawn by the fast engine only
    style: Literal["nilearn", "study"] = "nilearn"
    #: side of the square RGB picture, pixels (the study: 672)
    size: Annotated[int, Field(ge=32, le=2048)] = 64
    #: every TR of every run (what the study's AE trained on) or one volume per trial
    samples: Literal["all_trs", "trials"] = "trials"
    #: plot_stat_map's threshold, in the volume's intensity units (the study: 100)
    threshold: Annotated[float, Field(ge=0)] = 100.0

    @model_validator(mode="after")
    def _check_style(self) -> "RenderParams":
        if self.style == "study" and self.engine == "nilearn":
            raise ValueError("style: study is drawn by the fast engine only (this environment's nilearn lays the "
                             "views out in another order than the study's 0.10.4): set engine: fast")
        return self


class PreprocessParams(_Section):
    """Stage fmri: one sample per trial (or per TR) from the BOLD runs."""

    #: betas (single-trial GLM of the runs), volume, rendered (the study's pictures), or glmsingle
    #: (release 2.0's single-trial betas: no runs needed)
    method: Literal["rendered", "volume", "betas", "glmsingle"] = "betas"
    #: the runs read by volume, betas and rendered: raw (as acquired, each session in its own scanner
    #: space; the study) or T1w (fMRIPrep's motion-corrected runs in the subject's anatomy)
    space: Literal["raw", "T1w"] = "T1w"
    #: seconds after the anchor: one number takes the nearest volume, [a, b] averages the
    #: linearly interpolated signal over that window. The study: 0 (no haemodynamic lag).
    lag_s: Annotated[float, Field(ge=0, le=30)] | tuple[Annotated[float, Field(ge=0, le=30)], Annotated[float, Field(ge=0, le=30)]] = (4.0, 6.0)
    #: what lag_s counts from: stimulus onset, or its offset (the study took the offset volume)
    anchor: Literal["onset", "offset"] = "onset"
    #: how a time picks a volume: nearest (half to even), or floor (the study: int(StimOff / TR))
    rounding: Literal["nearest", "floor"] = "nearest"
    #: voxels kept by volume, betas and glmsingle: the visual region (the SPM ROI masks named in
    #: rois, T1w space only) or the whole brain (raw: an EPI mask of the run; T1w: fMRIPrep's brain
    #: mask; glmsingle: the release's brain mask)
    mask: Literal["region", "brain"] = "region"
    rois: Annotated[list[Literal["EarlyVis", "LOC", "OPA", "PPA", "RSC"]], Field(min_length=1)] = list(ROI_NAMES)
    #: single-trial GLM: least-squares-all (one model) or least-squares-separate (one model per trial)
    glm: Literal["lsa", "lss"] = "lsa"
    noise_model: Literal["ar1", "ols"] = "ar1"
    #: cosine drift cut-off, Hz (SPM's 1/128 s)
    high_pass_hz: Annotated[float, Field(gt=0, le=0.1)] = 0.0078125
    #: runs processed in parallel (each holds one run in memory)
    jobs: Annotated[int, Field(ge=1, le=64)] = 2
    render: RenderParams = RenderParams()

    @model_validator(mode="after")
    def _check_window(self) -> "PreprocessParams":
        if isinstance(self.lag_s, tuple) and self.lag_s[0] > self.lag_s[1]:
            raise ValueError(f"lag_s: window start {self.lag_s[0]} is after its end {self.lag_s[1]}")
        return self


class TrainParams(_Section):
    """How an autoencoder is trained (stages fmri_ae and image_ae)."""

    epochs: Annotated[int, Field(ge=1, le=10000)] = 30
    batch_size: Annotated[int, Field(ge=1, le=4096)] = 32
    #: Adam, as the study: lr 1e-3, weight decay 1e-5
    lr: Annotated[float, Field(gt=0, le=1)] = 1e-3
    weight_decay: Annotated[float, Field(ge=0, le=1)] = 1e-5
    #: epochs without a better monitored loss before training stops
    patience: Annotated[int, Field(ge=1, le=1000)] = 5
    #: the monitored loss: validation (the best epoch's weights are kept) or last_batch (the study:
    #: the last mini-batch's training loss of each epoch, and the final epoch's weights)
    stop_on: Literal["validation", "last_batch"] = "validation"
    #: fraction of the training subjects' images (all their presentations) held out for validation
    val_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.15
    seed: Annotated[int, Field(ge=0)] = 0


class FmriAEParams(_Section):
    """Stage fmri_ae: the autoencoder that fits the fMRI samples (see neurolatent.models.autoencoder)."""

    #: subject-wise split (the study: train CSI1-3, test CSI4)
    train_subjects: Annotated[list[Subject], Field(min_length=1)] = ["CSI1", "CSI2", "CSI3"]
    test_subjects: list[Subject] = ["CSI4"]
    #: conv channels from the input's (rendered: the study's 3-16-32-64-128-256; volume: 1-...)
    channels: Annotated[list[Annotated[int, Field(ge=1, le=1024)]], Field(min_length=2, max_length=8)] = [3, 16, 32, 64, 128, 256]
    #: MLP widths for betas, input first implied: hidden layers then the latent size
    widths: Annotated[list[Annotated[int, Field(ge=1, le=65536)]], Field(min_length=1, max_length=6)] = [256, 64]
    train: TrainParams = TrainParams()

    @model_validator(mode="after")
    def _check_split(self) -> "FmriAEParams":
        if set(self.train_subjects) & set(self.test_subjects):
            raise ValueError("test_subjects: a subject is in both the training and the test split")
        return self


class ImageAEParams(_Section):
    """Stage image_ae: a conv autoencoder on the stimulus images."""

    #: images are resized to size x size RGB; size must be divisible by 2 ** (len(channels) - 1)
    size: Annotated[int, Field(ge=16, le=1024)] = 64
    channels: Annotated[list[Annotated[int, Field(ge=1, le=1024)]], Field(min_length=2, max_length=8)] = [3, 16, 32, 64, 64]
    train: TrainParams = TrainParams()

    @model_validator(mode="after")
    def _check_size(self) -> "ImageAEParams":
        if self.channels[0] != 3:
            raise ValueError("channels: the first entry is the RGB input, 3")
        if self.size % 2 ** (len(self.channels) - 1):
            raise ValueError(f"size: {self.size} is not divisible by 2^{len(self.channels) - 1} (one halving per conv layer)")
        return self


class EmbedParams(_Section):
    """Stages embed_fmri and embed_images: per-stimulus matrices."""

    #: fMRI conv latents: flatten (the study's code, C*H*W) or avgpool (C, as the study's text)
    pooling: Literal["flatten", "avgpool"] = "avgpool"
    #: image models, each one matrix: a transformers checkpoint name or local path,
    #: untrained:<checkpoint> (its architecture with seeded random weights), pixels, image_ae
    image_models: Annotated[list[str], Field(min_length=1)] = ["pixels", "image_ae", "untrained:resources/vit-tiny"]
    #: transformer tokens: flat (the study: all tokens flattened), cls, or mean
    tokens: Literal["flat", "cls", "mean"] = "cls"
    #: transformer hidden states, each an image model of its own: last (last_hidden_state, after the
    #: final layernorm: the study's, named as the model) or an index k (0 = the patch embeddings,
    #: k = after block k; named <model>@layer<k>); pixels and image_ae have no layers
    layers: Annotated[list[Literal["last"] | int], Field(min_length=1)] = ["last"]
    #: pixels control: images downsampled to this side, RGB, flattened
    pixels_size: Annotated[int, Field(ge=2, le=256)] = 16
    batch_size: Annotated[int, Field(ge=1, le=1024)] = 16
    seed: Annotated[int, Field(ge=0)] = 0

    @model_validator(mode="before")
    @classmethod
    def _check_layers(cls, data: Any) -> Any:
        # before pydantic's own check: it would take true as 1 and "2" as 2
        layers = data.get("layers") if isinstance(data, dict) else None
        if isinstance(layers, list):
            for layer in layers:
                if layer != "last" and (isinstance(layer, bool) or not isinstance(layer, int) or layer < 0):
                    raise ValueError(f"layers: {layer!r} is not a layer (last, or a hidden state's index: 0 = the "
                                     "patch embeddings, k = after block k)")
            if len(set(layers)) != len(layers):
                raise ValueError("layers: a layer is listed twice")
        return data

    @model_validator(mode="after")
    def _check_models(self) -> "EmbedParams":
        if len(set(self.image_models)) != len(self.image_models):
            raise ValueError("image_models: a model is listed twice")
        for name in self.image_models:
            if name.startswith("untrained:") and not name.removeprefix("untrained:"):
                raise ValueError("image_models: 'untrained:' needs a checkpoint, e.g. untrained:google/vit-base-patch16-224-in21k")
        if self.tokens == "cls" and 0 in self.layers:
            raise ValueError("layers: 0 with tokens: cls is one vector for every image (the CLS token before any "
                             "block has seen the image: its learned embedding plus position); use tokens: mean or "
                             "flat, or start at layer 1")
        return self


class RsaParams(_Section):
    """Stage rsa: every image model against every fMRI representation, per subject and group."""

    #: fMRI representations: the fMRI AE's latents and/or the fmri stage's samples (region voxels)
    fmri: Annotated[list[Literal["ae", "samples"]], Field(min_length=1)] = ["ae", "samples"]
    #: standardise each matrix's features before the SVD (the study did)
    standardise: bool = True
    #: keep the fewest SVD components reaching this explained variance (the study: 0.70) ...
    variance: Annotated[float, Field(gt=0, le=1)] | None = 0.70
    #: ... or exactly this many (set variance: null); both null = no reduction
    components: Annotated[int, Field(ge=1)] | None = None
    #: never fewer components than this: 1 - Pearson r between vectors of 1 or 2 values is
    #: undefined or only +-1 (a flat image-AE space can reach 70% variance with one component)
    min_components: Annotated[int, Field(ge=1)] = 3
    #: 1 - Pearson r (the study), euclidean, or 1 - cosine
    dissimilarity: Literal["correlation", "euclidean", "cosine"] = "correlation"
    #: RDM comparison on the upper triangle: spearman (rank), pearson (the study), kendall_tau_a, cosine
    compare: Literal["pearson", "spearman", "kendall_tau_a", "cosine"] = "spearman"
    #: how fMRI rows meet image rows: name (joined by image name) or position (the study: the fMRI rows
    #: in trial order against the image model's rows in its own order, the n first of each)
    pairing: Literal["name", "position"] = "name"
    #: the RDM cells compared: upper (each pair once) or full (the whole square: diagonal and both
    #: triangles, every pair twice; the n zero diagonal cells agree in any two RDMs and inflate r)
    triangle: Literal["upper", "full"] = "upper"
    #: label permutations of linear CKA's test (Kornblith et al. 2019, unbiased HSIC)
    cka_permutations: Annotated[int, Field(ge=1, le=1_000_000)] = 1000
    #: stimulus-label permutations per test (Mantel); 10,000 for a real run
    permutations: Annotated[int, Field(ge=1, le=1_000_000)] = 10_000
    #: bootstrap resamples of stimuli for the confidence interval
    bootstrap: Annotated[int, Field(ge=1, le=100_000)] = 1000
    ci: Annotated[float, Field(gt=0, lt=1)] = 0.95
    seed: Annotated[int, Field(ge=0)] = 0

    @model_validator(mode="after")
    def _check_reduction(self) -> "RsaParams":
        if self.variance is not None and self.components is not None:
            raise ValueError("components: set either variance or components (the other to null)")
        if self.triangle == "full" and self.compare == "kendall_tau_a":
            raise ValueError("triangle: full supports compare pearson, spearman and cosine (tau-a over n^2 cells is "
                             "O(n^4))")
        return self


class StitchParams(_Section):
    """Stage stitch: map fMRI latents onto image latents and back (see neurolatent.science.mapping)."""

    #: fMRI side: the fMRI AE's latents and/or the fmri stage's samples of the visual region
    fmri: Annotated[list[Literal["ae", "samples"]], Field(min_length=1)] = ["ae", "samples"]
    methods: Annotated[list[Literal["ridge", "procrustes", "relative"]], Field(min_length=1)] = ["ridge", "procrustes", "relative"]
    #: test stimuli: repeats (BOLD5000's repeated images, fMRI averaged over repeats) or holdout
    #: (a seeded fraction of each subject's images; for selections without repeats, as the demo)
    test: Literal["repeats", "holdout"] = "repeats"
    test_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.2
    #: a subject with fewer test images is an error
    min_test: Annotated[int, Field(ge=2)] = 5
    #: PCA dimension of both sides before the orthogonal Procrustes map
    procrustes_dims: Annotated[int, Field(ge=1)] = 16
    #: anchor stimuli (from the training set) of the relative representations
    anchors: Annotated[int, Field(ge=2)] = 32
    #: label permutations for the 2-way accuracy's p-value and chance interval
    permutations: Annotated[int, Field(ge=1)] = 1000
    #: also fit one mapping on all subjects' AE latents (they share the AE's space)
    pooled: bool = True
    #: decode ridge-predicted image-AE latents to pictures with the image AE's decoder
    reconstruct: bool = True
    #: the reverse: predict each region voxel from each image model (volume and betas samples)
    encode: bool = True
    seed: Annotated[int, Field(ge=0)] = 0


class ComputeParams(_Section):
    """Where and how every stage computes (see neurolatent.runtime)."""

    #: training, embedding and the permutation test: auto = CUDA when torch sees one, else CPU
    device: Literal["auto", "cpu", "cuda"] = "auto"
    #: threads of torch, MKL, OpenMP and OpenBLAS; results are bitwise only for one thread count
    threads: Annotated[int, Field(ge=1, le=256)] = 2
    #: the same bits on any x86-64 CPU with AVX2 (AVX2 kernels, oneDNN off); false: this CPU's fastest
    portable: bool = True
    #: where the per-run work of the dataset and fmri stages runs (runtime.parallel_map): local
    #: processes; dask, a running Dask scheduler (dask_address, else DASK_SCHEDULER_ADDRESS); auto,
    #: dask when one of those is set, else local. The same bits either way
    scheduler: Literal["auto", "local", "dask"] = "auto"
    #: the Dask scheduler's address (tcp://host:8786); null: DASK_SCHEDULER_ADDRESS, which DVC does not track
    dask_address: Annotated[str, Field(pattern=r"^\S+$")] | None = None

    @model_validator(mode="after")
    def _check_scheduler(self) -> "ComputeParams":
        if self.scheduler == "local" and self.dask_address is not None:
            raise ValueError("dask_address: set, but scheduler: local never uses it (scheduler: auto or dask does)")
        return self


class Params(_Section):
    """The whole of params.yaml."""

    compute: ComputeParams = ComputeParams()
    data: DataParams = DataParams()
    preprocess: PreprocessParams = PreprocessParams()
    fmri_ae: FmriAEParams = FmriAEParams()
    image_ae: ImageAEParams = ImageAEParams()
    embed: EmbedParams = EmbedParams()
    rsa: RsaParams = RsaParams()
    stitch: StitchParams = StitchParams()

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
