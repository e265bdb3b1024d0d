"""Run in a fresh process by tests/pipeline/test_numerics.py: pin this process's numerics (or not), play
a machine, then compute every kind of floating-point operation the pipeline runs on the CPU and
print one SHA-1 per operation (JSON on stdout).

``python numerics_probe.py '{"portable": true, "numba_host": "haswell", "one_core": true}'``

What a machine changes that the parent cannot set by environment is played here, before any
numeric library loads:

- ``numba_host``: the CPU name and features llvmlite reports for the host (numba compiles for
  them unless told otherwise): ``haswell`` plays an AVX2-only CPU; absent, this CPU's own.
- ``one_core``: this process may run on one core only (``sched_setaffinity``): OpenMP, MKL and
  OpenBLAS size their thread teams and work splits by the cores they find.

The parent sets the rest in the environment: ``LD_PRELOAD`` of a library that makes MKL take this
CPU for an Intel one (MKL picks its code branches by vendor), ``MKL_ENABLE_INSTRUCTIONS`` (the ISA
MKL finds), and what a machine without AVX-512 makes torch and numpy choose.

Each operation runs on its inputs stored at several offsets from the allocator's alignment (0, 1,
3 and 7 float32s); the digest is over all of them, and an operation whose result moved with the
offset is reported by name under ``"alignment-dependent"``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys

settings = json.loads(sys.argv[1])
if settings.get("one_core"):
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

from neurolatent.pipeline.numerics import pin_numerics  # noqa: E402  (imports no numeric library)

THREADS = 2
pin_numerics(THREADS, portable=settings["portable"])

if settings.get("numba_host") == "haswell":
    import llvmlite.binding as llvm
    import numba.core.codegen

    # what llvmlite reports on an Intel Haswell (an AVX2 CPU without AVX-512)
    haswell = ("+64bit,+avx,+avx2,+bmi,+bmi2,+cmov,+cx16,+cx8,+f16c,+fma,+fsgsbase,+fxsr,+invpcid,+lzcnt,+mmx,"
               "+movbe,+pclmul,+popcnt,+rdrnd,+sahf,+sse,+sse2,+sse3,+sse4.1,+sse4.2,+ssse3,+xsave,+xsaveopt,"
               "-avx512f,-avx512bw,-avx512cd,-avx512dq,-avx512vl")
    llvm.get_host_cpu_name = lambda: "haswell"
    numba.core.codegen.get_host_cpu_features = lambda: haswell

import numpy as np  # noqa: E402
import torch  # noqa: E402

from neurolatent.pipeline.numerics import configure_torch  # noqa: E402

configure_torch(THREADS)
OFFSETS = (0, 1, 3, 7)


def digest(*arrays) -> str:
    h = hashlib.sha1()
    for a in arrays:
        a = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def shifted(array: np.ndarray, offset: int) -> np.ndarray:
    """``array``'s values in a new buffer, starting ``offset`` elements past an aligned address."""
    flat = np.empty(array.size + offset + 16, dtype=array.dtype)
    start = (-flat.ctypes.data // array.itemsize) % 16 + offset  # 64-byte aligned, then shifted
    out = flat[start:start + array.size].reshape(array.shape)
    out[...] = array
    return out


def train_steps(build, inputs: np.ndarray, steps: int = 3) -> list:
    """Adam on MSE, as models.training does: every step's loss, then the weights and moments."""
    torch.manual_seed(0)
    model = build()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-5)
    x = torch.from_numpy(inputs)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), x)
        loss.backward()
        optimizer.step()
        losses.append(loss.detach())
    moments = [s[k] for s in optimizer.state.values() for k in ("exp_avg", "exp_avg_sq")]
    return [torch.stack(losses), *model.state_dict().values(), *moments]


def operations(rng: np.random.Generator) -> dict:
    """name -> (inputs, function of the inputs that returns arrays): each the kind of computation a
    stage runs, through the same library entry points."""
    from neurolatent.models.autoencoder import ConvAutoencoder, MLPAutoencoder
    from neurolatent.science.rsa.compare import rank
    from neurolatent.science.rsa.inference import bootstrap
    from neurolatent.science.rsa.kernels import permuted_dots
    from neurolatent.science.rsa.rdm import rdm_upper, reduce
    from neurolatent.science.cka import linear_cka
    from neurolatent.science.mapping import RidgeMapping, ProcrustesMapping
    from neurolatent.science.voxelwise import voxelwise_r
    from neurolatent.science.render import render_fast
    import scipy.linalg

    betas = rng.standard_normal((32, 300)).astype(np.float32)
    pictures = rng.random((8, 3, 32, 32)).astype(np.float32)
    volumes = rng.standard_normal((4, 1, 16, 16, 16)).astype(np.float32)
    latents = rng.standard_normal((60, 40))
    design = rng.standard_normal((120, 30))
    series = design @ rng.standard_normal((30, 50)) + rng.standard_normal((120, 50))
    n = 64
    square = rng.standard_normal((n, n)).astype(np.float32)
    square = (square + square.T) / 2
    fixed = rng.standard_normal((1, n * (n - 1) // 2)).astype(np.float32)
    perms = np.stack([rng.permutation(n) for _ in range(20)]).astype(np.uint32)
    brain = rng.standard_normal((5, 20, 24, 20)).astype(np.float32) * 100
    wide = rng.standard_normal((2000, 700))

    def vit(images):
        from neurolatent.models.image_models import load_transformer

        model, _ = load_transformer("resources/vit-tiny", untrained=True, seed=0)
        with torch.inference_mode():
            out = model(pixel_values=torch.from_numpy(images), output_hidden_states=True)
        return [out.last_hidden_state, *out.hidden_states]

    def decode(images):  # the image AE's reconstructions and latents, as embed_images and stitch
        torch.manual_seed(1)
        model = ConvAutoencoder([3, 8, 16]).eval()
        with torch.inference_mode():
            x = torch.from_numpy(images)
            return [model.encode(x), model(x)]

    def rsa_steps(x):
        scores, _ = reduce(x, variance=0.7)
        upper = rdm_upper(scores)
        other = rdm_upper(x[:, ::-1].copy(), "euclidean")
        boot = bootstrap(upper, other, "spearman", bootstrap=20, random_state=0)
        return [scores, upper, rank(upper), boot, linear_cka(x, x[:, :20] ** 2),
                np.linalg.eigh(x @ x.T)[0]]

    def stitch_steps(x, y):
        ridge = RidgeMapping().fit(x[:90], y[:90])
        procrustes = ProcrustesMapping(dims=10).fit(x[:90], y[:90])
        predicted = ridge.predict(x[90:])
        return [predicted, procrustes.predict(x[90:]), voxelwise_r(predicted, y[90:])]

    return {
        "mlp autoencoder: 3 Adam steps": ((betas,), lambda x: train_steps(lambda: MLPAutoencoder(300, [64, 16]), x)),
        "conv2d autoencoder: 3 Adam steps": ((pictures,), lambda x: train_steps(lambda: ConvAutoencoder([3, 8, 16]), x)),
        "conv3d autoencoder: 2 Adam steps": (
            (volumes,), lambda x: train_steps(lambda: ConvAutoencoder([1, 4, 8], dims=3, output="linear"), x, 2)),
        "image AE encode + decode": ((pictures,), decode),
        "vit forward, every hidden state": ((rng.random((2, 3, 64, 64)).astype(np.float32),), vit),
        "rsa: svd, rdm, ranks, bootstrap, cka, eigh": ((latents,), rsa_steps),
        "mantel kernel (numba, fastmath)": ((square, fixed, perms),
                                            lambda x, w, p: [permuted_dots(x, w, p, 16)]),
        "stitch: ridge, procrustes, voxelwise r": ((design, series), stitch_steps),
        "glm: least squares": ((design, series), lambda x, y: [np.linalg.lstsq(x, y, rcond=None)[0]]),
        # at the sizes where OpenBLAS splits the work between threads (the tiny ones above run on one)
        "numpy blas at the default's size: gemm, gemv, syrk, eigh": ((wide,), lambda x: [
            x[:372, :300] @ x[:300, :200], x.T @ x[:, 0], x @ x.T, np.linalg.eigh(x[:372, :372] @ x[:372, :372].T)[0]]),
        "scipy lapack: eigh, lstsq": ((wide,), lambda x: [
            scipy.linalg.eigh(x[:300, :300].T @ x[:300, :300])[0], scipy.linalg.lstsq(x[:, :300], x[:, 300])[0]]),
        "render fast (numba, fastmath)": ((brain,), lambda v: [render_fast(v, np.diag([2.0, 2, 2, 1]), 48, 3.0)]),
    }


def main() -> None:
    found: dict = {"alignment-dependent": []}
    for name, (inputs, function) in operations(np.random.default_rng(0)).items():
        results = [digest(*function(*(shifted(a, offset) for a in inputs))) for offset in OFFSETS]
        found[name] = results[0]
        if len(set(results)) > 1:
            found["alignment-dependent"].append(name)
    print(json.dumps(found))


if __name__ == "__main__":
    main()
