"""The sections of ``params.yaml``, each parameter declared once: its kind and bounds
(:mod:`neurolatent.science.constraints`), its one default and its one-paragraph explanation
(:func:`about`). :class:`neurolatent.pipeline.params.Params` puts them together.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from neurolatent.io.bids import MAX_RUNS_PER_SESSION, N_SESSIONS, ROIS, SUBJECTS
from neurolatent.science.constraints import Count, Fraction, NonNegative, Positive, Seed, Share

Subject = Literal[SUBJECTS]
#: BOLD5000's three forms: raw BIDS runs (scanner space of each session), fMRIPrep's T1w-space
#: derivatives with the SPM ROI masks, the GLMsingle single-trial betas of release 2.0
Form = Literal["raw", "T1w", "glmsingle"]
Roi = Literal[ROIS]
#: the feature families the synthetic twin can plant a ROI's responses from (science.synthetic.FAMILIES)
Family = Literal["lowlevel", "object", "scene"]


def about(text: str, **bounds: Any) -> Any:
    """A parameter's explanation (one paragraph: ``--help`` and docs/params.md show it) and any
    bounds beyond its kind's."""
    return Field(description=" ".join(text.split()), **bounds)


class Section(BaseModel):
    """A section of params.yaml: no unknown key, frozen, and no yes/no where a number is expected."""

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


class SyntheticParams(Section):
    """The synthetic BOLD5000: procedurally drawn stimuli and BOLD with a planted signal."""

    seed: Annotated[Seed, about("Seed of every random stream of the synthetic data (images, anatomy, planted "
                                "patterns, noise, head motion).")] = 0
    snr: Annotated[NonNegative, about("""The planted signal's strength: the sd of a region voxel's trial-to-trial
        peak response over its noise sd. 0 plants nothing at all (the null).""", le=1000)] = 1.0
    voxel_size_mm: Annotated[Count, about("""Voxel size of the grids, mm. BOLD5000's are 2 mm (raw runs 106 x 106 x 69,
        T1w runs 71 x 89 x 72); larger voxels scale them down.""", le=8)] = 2
    image_size: Annotated[Count, about("Side of the square stimulus images, pixels.", ge=32, le=1024)] = 128
    roi_radius_mm: Annotated[Positive, about("""Radius of each of the ten ROI spheres (EarlyVis, LOC, OPA, PPA, RSC in
        each hemisphere), mm; at most 10, as the two EarlyVis spheres are 20 mm apart and must not overlap.""",
                                             le=10)] = 7.0
    noise_percent: Annotated[Positive, about("A voxel's noise sd as a percentage of its baseline intensity (median over "
                                             "voxels).", le=50)] = 1.0
    drift_scale: Annotated[NonNegative, about("Amplitude of the slow scanner drift, in units of each voxel's noise sd.",
                                              le=100)] = 2.0
    families: Annotated[dict[Roi, Family], about("""The feature family each ROI's responses are planted from (both
        hemispheres): lowlevel (colour, contrast, oriented edges, layout and fine detail of the pixels), object (the
        drawn objects' number, size, shape and position, and the image's category) or scene (the horizon, openness,
        structures, road and ground texture of the drawn layout). The default is the visual hierarchy: EarlyVis
        lowlevel, LOC object, OPA, PPA and RSC scene; planting one family everywhere is the control with no
        ROI x model interaction.""")] = {"EarlyVis": "lowlevel", "LOC": "object", "OPA": "scene", "PPA": "scene",
                                         "RSC": "scene"}
    same_images: Annotated[bool, about("""true: every subject sees the first subject's images of the selected sessions
        and runs, each in its own order (BOLD5000's design for CSI1-3 over all sessions, in miniature: any few runs of
        the real schedules share almost no image between subjects, and alignment needs images in common); false:
        BOLD5000's schedules as they are.""")] = False
    shared_dims: Annotated[int, about("""Dimensions of image content beyond the planted features that every subject's
        responses carry (as real brains respond to more than any feature set describes): each image gets this many
        standard normal values, seeded, appended to each ROI family's z-scored features before the subject's random
        linear map, so they take shared_dims / (features + shared_dims) of the planted variance. 0: responses are a
        map of the features alone, and the shared space between subjects is the feature space itself.""",
                                  ge=0, le=256)] = 0
    repeats: Annotated[int, about("""How many of BOLD5000's 113 repeated images (its conventional test set, shown about 4
        times each across all sessions) the selected runs show, each as often as the subject's whole schedule shows it
        (CSI1: 4 times), in slots of images shown once; the same images for every subject, as in BOLD5000. A few real
        runs hold almost no image twice, so stitch.test: repeats has no noise ceiling on them; this puts the repeat
        design into the selection, at the cost of 3 trials of other images per planted image. 0: the schedules as
        they are.""", ge=0, le=113)] = 0
    jobs: Annotated[Count, about("Processes writing runs in parallel.", le=64)] = 2

    @model_validator(mode="after")
    def _check_families(self) -> "SyntheticParams":
        missing = [roi for roi in ROIS if roi not in self.families]
        if missing:
            raise ValueError(f"families: {missing[0]} has no family (every ROI needs one)")
        return self


class DataParams(Section):
    """Which part of BOLD5000 the pipeline runs on, and where it comes from."""

    source: Annotated[Literal["synthetic", "bids"], about("""synthetic: the embedded synthetic twin in BOLD5000's
        layout, with a planted signal; bids: a real BOLD5000 copy at data.bids_root (OpenNeuro ds001499).""")] = "synthetic"
    subjects: Annotated[list[Subject], about("The subjects, CSI1-CSI4.", min_length=1)] = list(SUBJECTS)
    sessions: Annotated[list[Annotated[Count, Field(le=15)]] | None, about(
        "Functional session numbers; null = all of each subject's sessions.")] = [1]
    runs: Annotated[list[Annotated[Count, Field(le=MAX_RUNS_PER_SESSION)]] | None, about(
        "Run numbers within each session; null = all runs. A run a session lacks is skipped.")] = [1, 2, 3]
    bids_root: Annotated[str | None, about("A real BOLD5000 copy (OpenNeuro ds001499) when source is bids.")] = None
    stimuli_root: Annotated[str | None, about("The stimulus release folder that holds Scene_Stimuli/ "
                                              "(BOLD5000_Stimuli), when source is bids.")] = None
    glmsingle_root: Annotated[str | None, about("""The GLMsingle release 2.0 folder (ROI betas, session betas, brain
        masks, presentation lists), searched by file name, when source is bids and forms include glmsingle.""")] = None
    forms: Annotated[list[Form], about("""The forms the dataset stage writes (synthetic) or links (bids): raw (the runs
        as acquired), T1w (fMRIPrep's T1w-space runs with the SPM ROI masks), glmsingle (release 2.0's single-trial
        betas). null: synthetic, all three; bids, what the copy holds (raw when data.bids_root has raw runs, T1w
        when it has fMRIPrep's T1w-space runs, glmsingle when data.glmsingle_root is set).""",
                                       min_length=1)] = ["raw", "T1w", "glmsingle"]
    link: Annotated[Literal["hardlink", "copy"], about("""How a real copy's files enter data/raw: hard links (a copy
        where the filesystems differ) or copies.""")] = "hardlink"
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


class RenderParams(Section):
    """The study's representation: each fMRI volume drawn as a nilearn ortho stat-map picture."""

    engine: Annotated[Literal["nilearn", "fast"], about("""nilearn: plot_stat_map itself, the reference; fast: the same
        picture drawn with numpy and numba, 20-30x faster.""")] = "nilearn"
    style: Annotated[Literal["nilearn", "study"], about("""nilearn: today's nilearn picture; study: the study's (nilearn
        0.10.4: cold_hot, a 660 x 350 px figure, views coronal-sagittal-axial), drawn by the fast engine only.""")
                     ] = "nilearn"
    size: Annotated[Count, about("Side of the square RGB picture, pixels (the study: 672).", ge=32, le=2048)] = 64
    samples: Annotated[Literal["all_trs", "trials"], about("""Every TR of every run (what the study's AE trained on) or one
        volume per trial.""")] = "trials"
    threshold: Annotated[NonNegative, about("plot_stat_map's threshold, in the volume's intensity units (the study: "
                                            "100).")] = 100.0

    @model_validator(mode="after")
    def _check_style(self) -> "RenderParams":
        if self.style == "study" and self.engine == "nilearn":
            raise ValueError("style: study is drawn by the fast engine only (this environment's nilearn lays the "
                             "views out in another order than the study's 0.10.4): set engine: fast")
        return self


Lag = Annotated[NonNegative, Field(le=30)]


class PreprocessParams(Section):
    """Stage fmri: one sample per trial (or per TR) from the BOLD runs."""

    method: Annotated[Literal["rendered", "volume", "betas", "glmsingle"], about("""How a trial becomes a sample: betas
        (single-trial GLM of the runs), volume (the masked volume at the haemodynamic lag), rendered (the study's
        pictures), or glmsingle (release 2.0's single-trial betas: no runs needed).""")] = "betas"
    space: Annotated[Literal["raw", "T1w"], about("""The runs read by volume, betas and rendered: raw (as acquired, each
        session in its own scanner space; the study) or T1w (fMRIPrep's motion-corrected runs in the subject's
        anatomy). null: T1w when data.forms has it, else raw.""")] = "T1w"
    lag_s: Annotated[Lag | tuple[Lag, Lag], about("""Seconds after the anchor: one number takes the nearest volume,
        [a, b] averages the linearly interpolated signal over that window. The study: 0 (no haemodynamic
        lag).""")] = (4.0, 6.0)
    anchor: Annotated[Literal["onset", "offset"], about("""What lag_s counts from: stimulus onset, or its offset (the
        study took the offset volume).""")] = "onset"
    rounding: Annotated[Literal["nearest", "floor"], about("""How a time picks a volume: nearest (half to even), or floor
        (the study: int(StimOff / TR)).""")] = "nearest"
    mask: Annotated[Literal["region", "brain"], about("""Voxels kept by volume, betas and glmsingle: the visual region
        (the SPM ROI masks named in rois, T1w space only) or the whole brain (raw: an EPI mask of the run; T1w:
        fMRIPrep's brain mask; glmsingle: the release's brain mask). null: region for T1w runs and GLMsingle betas,
        brain for raw runs.""")] = "region"
    rois: Annotated[list[Roi], about("The visual regions of interest whose masks make the region.",
                                     min_length=1)] = list(ROIS)
    glm: Annotated[Literal["lsa", "lss"], about("""The single-trial GLM: least-squares-all (one model of every trial) or
        least-squares-separate (one model per trial).""")] = "lsa"
    noise_model: Annotated[Literal["ar1", "ols"], about("The GLM's noise model: AR(1) prewhitening, or ordinary least "
                                                        "squares.")] = "ar1"
    high_pass_hz: Annotated[Positive, about("The cosine drift model's cut-off, Hz (SPM's 1/128 s).", le=0.1)] = 0.0078125
    jobs: Annotated[Count, about("Runs processed in parallel (each holds one run in memory).", le=64)] = 2
    render: RenderParams = RenderParams()

    @model_validator(mode="after")
    def _check_window(self) -> "PreprocessParams":
        if isinstance(self.lag_s, tuple) and self.lag_s[0] > self.lag_s[1]:
            raise ValueError(f"lag_s: window start {self.lag_s[0]} is after its end {self.lag_s[1]}")
        return self


class TrainParams(Section):
    """How an autoencoder is trained (stages fmri_ae and image_ae)."""

    epochs: Annotated[Count, about("Epochs at most (early stopping may end training sooner).", le=10000)] = 30
    batch_size: Annotated[Count, about("Samples per mini-batch.", le=4096)] = 32
    lr: Annotated[Positive, about("Adam's learning rate (the study: 1e-3).", le=1)] = 1e-3
    weight_decay: Annotated[NonNegative, about("Adam's weight decay (the study: 1e-5).", le=1)] = 1e-5
    patience: Annotated[Count, about("Epochs without a better monitored loss before training stops.", le=1000)] = 5
    stop_on: Annotated[Literal["validation", "last_batch"], about("""The monitored loss: validation (the best epoch's
        weights are kept) or last_batch (the study: the last mini-batch's training loss of each epoch, and the final
        epoch's weights).""")] = "validation"
    val_fraction: Annotated[Fraction, about("""Fraction of the training subjects' images (all their presentations) held out
        for validation.""")] = 0.15
    seed: Annotated[Seed, about("Seed of the weights, the validation split and the batch order.")] = 0


class FmriAEParams(Section):
    """Stage fmri_ae: the autoencoder that fits the fMRI samples (see neurolatent.models.autoencoder)."""

    train_subjects: Annotated[list[Subject], about("Subjects whose samples train the AE (the study: CSI1-3).",
                                                   min_length=1)] = ["CSI1", "CSI2", "CSI3"]
    test_subjects: Annotated[list[Subject], about("Subjects only scored, never trained on (the study: CSI4).")] = ["CSI4"]
    channels: Annotated[list[Annotated[Count, Field(le=1024)]], about("""Conv channels from the input's: rendered
        pictures use the study's 3-16-32-64-128-256 (672 px -> 256 x 21 x 21); volume the same widths after its one
        input channel.""", min_length=2, max_length=8)] = [3, 16, 32, 64, 128, 256]
    widths: Annotated[list[Annotated[Count, Field(le=65536)]], about("""The MLP AE's widths for betas, the input implied:
        its hidden layers, then the latent size.""", min_length=1, max_length=6)] = [256, 64]
    train: TrainParams = TrainParams()

    @model_validator(mode="after")
    def _check_split(self) -> "FmriAEParams":
        if set(self.train_subjects) & set(self.test_subjects):
            raise ValueError("test_subjects: a subject is in both the training and the test split")
        return self


class ImageAEParams(Section):
    """Stage image_ae: a conv autoencoder on the stimulus images."""

    size: Annotated[Count, about("""Images are resized to size x size RGB; size must be divisible by
        2 ** (len(channels) - 1).""", ge=16, le=1024)] = 64
    channels: Annotated[list[Annotated[Count, Field(le=1024)]], about("""Conv channels, 3 (RGB) first, then each encoder
        layer's output (the latent's channels last).""", min_length=2, max_length=8)] = [3, 16, 32, 64, 64]
    train: TrainParams = TrainParams()

    @model_validator(mode="after")
    def _check_size(self) -> "ImageAEParams":
        if self.channels[0] != 3:
            raise ValueError("channels: the first entry is the RGB input, 3")
        if self.size % 2 ** (len(self.channels) - 1):
            raise ValueError(f"size: {self.size} is not divisible by 2^{len(self.channels) - 1} (one halving per conv layer)")
        return self


class EmbedParams(Section):
    """Stages embed_fmri and embed_images: per-stimulus matrices."""

    pooling: Annotated[Literal["flatten", "avgpool"], about("""fMRI conv latents: flatten (the study's code, C*H*W) or
        avgpool (C, as the study's text says).""")] = "avgpool"
    image_models: Annotated[list[str], about("""Image models, each one matrix: a transformers checkpoint name or local
        folder, untrained:<checkpoint> (its architecture with seeded random weights), pixels, image_ae.""",
                                             min_length=1)] = ["pixels", "image_ae", "untrained:resources/vit-tiny"]
    tokens: Annotated[Literal["flat", "cls", "mean"], about("""A transformer's tokens: flat (the study: all tokens
        flattened), cls, or mean.""")] = "cls"
    layers: Annotated[list[Literal["last"] | int], about("""Transformer hidden states, each an image model of its own:
        last (last_hidden_state, after the final layernorm: the study's, named as the model) or an index k (0 = the
        patch embeddings, k = after block k; named <model>_layer<k>). pixels and image_ae have no layers.""",
                                                          min_length=1)] = ["last"]
    pixels_size: Annotated[Count, about("The pixels control: images downsampled to this side, RGB, flattened.",
                                        ge=2, le=256)] = 16
    batch_size: Annotated[Count, about("Images (or fMRI samples) per forward pass.", le=1024)] = 16
    seed: Annotated[Seed, about("Seed of the untrained models' random weights.")] = 0

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


class RsaParams(Section):
    """Stage rsa: every image model against every fMRI representation, per subject and group."""

    fmri: Annotated[list[Literal["ae", "samples", "align"]], about("""fMRI representations: the fMRI AE's latents (ae),
        the fmri stage's samples of the visual region (samples) and/or the align stage's shared space of every subject
        (align).""", min_length=1)] = ["ae", "samples"]
    standardise: Annotated[bool, about("Standardise each matrix's features before the SVD (the study did).")] = True
    variance: Annotated[Share | None, about("""Keep the fewest SVD components reaching this explained variance (the
        study: 0.70), or set it to null and give components.""")] = 0.70
    components: Annotated[Count | None, about("""Keep exactly this many SVD components (variance: null); both null = no
        reduction.""")] = None
    min_components: Annotated[Count, about("""Never fewer components than this: 1 - Pearson r between vectors of 1 or 2
        values is undefined or only +-1 (a flat image-AE space can reach 70% variance with one component).""")] = 3
    dissimilarity: Annotated[Literal["correlation", "euclidean", "cosine"], about("""The RDMs' dissimilarity: 1 - Pearson
        r (correlation, the study), euclidean, or 1 - cosine.""")] = "correlation"
    compare: Annotated[Literal["pearson", "spearman", "kendall_tau_a", "cosine"], about("""How two RDMs are compared, on
        the upper triangle: spearman (rank), pearson (the study), kendall_tau_a, or cosine.""")] = "spearman"
    pairing: Annotated[Literal["name", "position"], about("""How fMRI rows meet image rows: name (joined by image name) or
        position (the study: the fMRI rows in trial order against the image model's rows in its own order, the n
        first of each).""")] = "name"
    triangle: Annotated[Literal["upper", "full"], about("""The RDM cells compared: upper (each pair once) or full (the
        whole square: diagonal and both triangles, every pair twice; the n zero diagonal cells agree in any two RDMs
        and inflate r).""")] = "upper"
    cka_permutations: Annotated[Count, about("""Label permutations of linear CKA's test (Kornblith et al. 2019, unbiased
        HSIC).""", le=1_000_000)] = 1000
    inference: Annotated[Literal["exact", "tail", "gamma"], about("""How the Mantel tests' p's (each cell's and the
        family-wise one) are made from their nulls (Winkler et al. 2016; FSL PALM's accelerations). exact: the
        permutation p of permutations relabellings. tail: fit_permutations relabellings, and where the permutation p
        is below 0.1 a generalized Pareto fit to the null's upper tail gives it (PALM's goodness-of-fit choice of
        the tail). gamma: fit_permutations relabellings and the gamma distribution of the null's mean, variance and
        skewness for every p (the default: within 2x of the exact p where that resolves it, where the tail fit from
        1,000 relabellings was off by up to 10x). The tables' p_method columns say which method made each p.""")] = "gamma"
    permutations: Annotated[Count, about("Stimulus-label permutations per Mantel test with inference: exact; 10,000 "
                                         "for a real run.", le=1_000_000)] = 10_000
    fit_permutations: Annotated[Count, about("""Stimulus-label permutations per Mantel test with inference: tail or
        gamma (the null the fit is made from).""", ge=100, le=1_000_000)] = 1000
    bootstrap: Annotated[Count, about("Bootstrap resamples of the stimuli for the confidence interval.",
                                      le=100_000)] = 1000
    ci: Annotated[Fraction, about("The confidence intervals' level.")] = 0.95
    seed: Annotated[Seed, about("Seed of the permutations and resamples.")] = 0

    @model_validator(mode="after")
    def _check_reduction(self) -> "RsaParams":
        if self.variance is not None and self.components is not None:
            raise ValueError("components: set either variance or components (the other to null)")
        if self.triangle == "full" and self.compare == "kendall_tau_a":
            raise ValueError("triangle: full supports compare pearson, spearman and cosine (tau-a over n^2 cells is "
                             "O(n^4))")
        return self


class StitchParams(Section):
    """Stage stitch: map fMRI latents onto image latents and back (see neurolatent.science.mapping)."""

    fmri: Annotated[list[Literal["ae", "samples", "align"]], about("""The fMRI side: the fMRI AE's latents (ae), the fmri
        stage's samples of the visual region (samples) and/or the align stage's shared space (align).""",
                                                                   min_length=1)] = ["ae", "samples"]
    methods: Annotated[list[Literal["ridge", "procrustes", "relative"]], about("""Mappings from fMRI to image latents:
        ridge regression, orthogonal Procrustes between PCA spaces, zero-shot relative representations.""",
                                                                             min_length=1)] = ["ridge", "procrustes",
                                                                                               "relative"]
    test: Annotated[Literal["repeats", "holdout"], about("""Test stimuli: repeats (BOLD5000's repeated images, fMRI
        averaged over repeats) or holdout (a seeded fraction of each subject's images; for selections without
        repeats, as the demo).""")] = "repeats"
    test_fraction: Annotated[Fraction, about("With test: holdout, the fraction of each subject's images held out.")] = 0.2
    min_test: Annotated[Count, about("A subject with fewer test images is an error.", ge=2)] = 5
    procrustes_dims: Annotated[Count, about("PCA dimension of both sides before the orthogonal Procrustes map.")] = 16
    anchors: Annotated[Count, about("Anchor stimuli (from the training set) of the relative representations.", ge=2)] = 32
    permutations: Annotated[Count, about("Label permutations for the 2-way accuracy's p-value and chance "
                                         "interval.")] = 1000
    pooled: Annotated[bool, about("Also fit one mapping on all subjects' AE latents (they share the AE's space).")] = True
    reconstruct: Annotated[bool, about("Decode ridge-predicted image-AE latents to pictures with the image AE's "
                                       "decoder.")] = True
    encode: Annotated[bool, about("The reverse: predict each region voxel from each image model (volume and betas "
                                  "samples).")] = True
    seed: Annotated[Seed, about("Seed of the holdout split, the mappings' anchors and the permutations.")] = 0


class EncodeParams(Section):
    """Stage encode: banded ridge from several feature spaces to each voxel, and the variance each
    explains alone or shares (see neurolatent.science.encoding). Test images: stitch's."""

    bands: Annotated[list[Annotated[str, Field(min_length=1)]] | None, about("""The image models fitted together as
        bands (names as the images manifest gives them, as in metrics/rsa.json); null: every image model and layer
        embed_images wrote.""", min_length=1)] = None
    planted: Annotated[bool, about("""Also partition the planted feature families of the synthetic data (the check
        that each ROI's own family carries its variance).""")] = True
    noise_features: Annotated[int, about("""Width of a control band of pure noise features added to every partition
        (it must get no share of the variance); 0: none.""", ge=0, le=1024)] = 32
    partition: Annotated[Literal["split", "subsets"], about("""How the held-out R^2 is divided among the bands: split,
        one banded-ridge fit of all bands per subject and partition, each band's share by the product measure (himalaya's
        r2_score_split; the shares sum to the joint R^2); subsets, a fit per non-empty subset of the bands (2^k - 1),
        each band's unique variance and the parts sets of bands share, by inclusion-exclusion: for a few bands.""")] = (
        "split")
    search: Annotated[Count, about("""Band weightings tried per voxel by the random search (himalaya's n_iter; the
        first is equal weights).""", le=1000)] = 10
    folds: Annotated[Count, about("Cross-validation folds of the training images for choosing the penalties.",
                                  ge=2, le=100)] = 5
    bootstrap: Annotated[Count, about("Bootstrap draws over test images for each part's interval.")] = 1000
    seed: Annotated[Seed, about("Seed of the search, the folds, the noise band and the bootstrap.")] = 0


class AlignParams(Section):
    """Stage align: one shared space for every subject, and a new subject read from few of its images (see
    neurolatent.science.alignment and .fewshot)."""

    fmri: Annotated[Literal["samples", "ae"], about("""The responses aligned: the fmri stage's samples of the visual
        region (samples, each subject its own voxels) or the fMRI AE's latents (ae).""")] = "samples"
    methods: Annotated[list[Literal["srm", "detsrm", "procrustes", "adapter"]], about("""The alignments compared, each
        against scratch (ridge on the new subject's own images): srm (the probabilistic shared response model,
        BrainIAK's), detsrm (its deterministic form), procrustes (fmralign's template of scaled orthogonal Procrustes
        maps, after a per-subject PCA to align.features), adapter (MindEye2-style: a linear adapter per subject into
        one latent, fitted jointly with a shared map to the image features align.anchor; needs no shared images).
        The first three are fitted on the images every subject saw.""", min_length=1)] = ["srm", "procrustes",
                                                                                           "adapter"]
    method: Annotated[Literal["srm", "detsrm", "procrustes", "adapter"], about("""The alignment whose shared space is
        written to data/align (fitted on every subject) for rsa and stitch (their fmri: align) and named in the
        summary; `dvc exp run -S align.method=...` compares them.""")] = "srm"
    features: Annotated[Count, about("Dimensions of the shared space (BrainIAK's features).", le=1024)] = 16
    n_iter: Annotated[Count, about("Iterations of the SRMs' fits and of the Procrustes template's updates.",
                                   le=1000)] = 10
    k: Annotated[list[Annotated[Count, Field(ge=2)]], about("""How many of the new subject's training images map it
        in (and fit scratch), each a fit of its own; the subject's all training images are always added. Each must be
        at most what every subject has (its images less the test ones).""", min_length=1)] = [25, 50, 100, 200]
    anchor: Annotated[list[Annotated[str, Field(min_length=1)]] | None, about("""The image models whose latents
        (z-scored, side by side, each scaled by 1/sqrt(its width)) anchor the adapter; null: every image model
        embed_images wrote.""", min_length=1)] = None
    test_fraction: Annotated[Fraction, about("""The share of the images every subject saw held out as test images
        (seeded; the same for every subject).""")] = 0.2
    min_test: Annotated[Count, about("Fewer test images is an error (identification needs candidates).", ge=2)] = 5
    bootstrap: Annotated[Count, about("Bootstrap draws over test images for the 2-way accuracy's interval.")] = 1000
    ci: Annotated[Fraction, about("Coverage of that interval.")] = 0.95
    seed: Annotated[Seed, about("Seed of the test split, the order images enter a few-shot fit, the SRMs' "
                                "initialisation and the bootstrap.")] = 0
class ExportParams(Section):
    """Stage export: the run's results in the files of Net2Brain, Brain-Score and the Algonauts
    challenge (exports/; docs/field-tools.md)."""

    frames: Annotated[list[Literal["net2brain", "brainscore", "algonauts"]], about("""The frames to write:
        net2brain (brain and model RDMs over the images every subject saw, and Net2Brain's results.csv),
        brainscore (a neural assembly in netCDF, the stimulus set and a benchmark plugin skeleton), algonauts
        (noise-normalised encoding accuracy per model and ROI).""", min_length=1)] = [
        "net2brain", "brainscore", "algonauts"]
    identifier: Annotated[str, about("""The Brain-Score plugin's name: its data and benchmark folders and the prefix
        of its benchmark identifiers (<identifier>.<ROI>-ridge, <identifier>.<ROI>-rdm).""",
                                     pattern=r"^[A-Za-z][A-Za-z0-9_]*$")] = "neurolatent_bold5000"


class ComputeParams(Section):
    """Where and how every stage computes (see neurolatent.pipeline.numerics and .parallel)."""

    device: Annotated[Literal["auto", "cpu", "cuda"], about("""Training, embedding and the permutation test: auto (CUDA
        when torch sees one, else the CPU), cpu or cuda.""")] = "auto"
    threads: Annotated[Count, about("""Threads of torch, MKL, OpenMP and OpenBLAS; results are bitwise the same only for
        one thread count.""", le=256)] = 2
    portable: Annotated[bool, about("""true: the same bits on any x86-64 CPU with AVX2 (docs/reproducibility.md, "Same params, same
        bits"); false: this CPU's fastest kernels.""")] = True
    scheduler: Annotated[Literal["auto", "local", "dask"], about("""Where the per-run work of the dataset and fmri stages
        runs: local processes; dask, a running Dask scheduler (dask_address, else DASK_SCHEDULER_ADDRESS); auto, dask
        when one of those is set, else local. The same bits either way.""")] = "auto"
    dask_address: Annotated[Annotated[str, Field(pattern=r"^\S+$")] | None, about("""The Dask scheduler's address
        (tcp://host:8786); null: DASK_SCHEDULER_ADDRESS, which DVC does not track.""")] = None

    @model_validator(mode="after")
    def _check_scheduler(self) -> "ComputeParams":
        if self.scheduler == "local" and self.dask_address is not None:
            raise ValueError("dask_address: set, but scheduler: local never uses it (scheduler: auto or dask does)")
        return self
