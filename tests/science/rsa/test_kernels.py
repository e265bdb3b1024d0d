"""The permutation and bootstrap kernels (neurolatent.science.rsa.kernels) against direct computations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import squareform

from neurolatent.science.rsa.compare import compare
from neurolatent.science.rsa.inference import (
    bootstrap,
    random_permutations,
)
from neurolatent.science.rsa.kernels import (
    permuted_dots,
    permuted_dots_torch,
    prepare,
)
from neurolatent.science.rsa.rdm import rdm_upper


def random_patterns(seed: int, n: int = 40, d: int = 15) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d))


def test_cpu_kernel_and_torch_gather_agree():
    a = rdm_upper(random_patterns(15, n=300))
    fixed = [rdm_upper(random_patterns(seed, n=300)) for seed in (16, 17, 18)]
    prepared = prepare(a, fixed, "spearman")
    perms = random_permutations(300, 9, 0)
    numba_sums = permuted_dots(prepared.x_square, prepared.weights, perms, 64)  # 5 x 5 tiles
    torch_sums = permuted_dots_torch(prepared.x_square, prepared.weights, perms, "cpu")
    assert numba_sums.shape == (9, 3)
    np.testing.assert_allclose(numba_sums, torch_sums, atol=1e-4)
    square = squareform(a)
    upper = np.triu_indices(300, k=1)
    for m, other in enumerate(fixed):  # each column is the exact statistic of its own fixed RDM
        expected = [compare(square[np.ix_(p, p)][upper], other, "spearman") for p in perms]
        np.testing.assert_allclose(numba_sums[:, m], expected, atol=1e-5)


@pytest.mark.parametrize("method", ["pearson", "spearman", "kendall_tau_a", "cosine"])
def test_bootstrap_equals_a_direct_computation_on_the_drawn_cells(method):
    a, b = rdm_upper(random_patterns(17, n=30)), rdm_upper(random_patterns(18, n=30))
    replicates = bootstrap(a, b, method, bootstrap=3, random_state=4)
    sample = np.random.default_rng(4).integers(0, 30, size=(3, 30))[1]
    first, second = np.triu_indices(30, k=1)
    keep = sample[first] != sample[second]
    ranked = {"spearman": (stats.rankdata(a), stats.rankdata(b))}.get(method, (a, b))  # the full RDMs' ranks
    x, y = (squareform(v)[sample[first[keep]], sample[second[keep]]] for v in ranked)
    tau_a = np.mean(np.sign(x[:, None] - x[None]) * np.sign(y[:, None] - y[None])) * len(x) / (len(x) - 1)
    direct = {"pearson": stats.pearsonr(x, y)[0], "spearman": stats.pearsonr(x, y)[0], "kendall_tau_a": tau_a,
              "cosine": x @ y / np.linalg.norm(x) / np.linalg.norm(y)}[method]
    assert abs(replicates[1] - direct) < 1e-9


class _MadeWhenIndexed:
    """A sequence of upper triangles made when indexed, remembering each (weakly): which are still
    alive when the next is asked for."""

    def __init__(self, seeds: list[int]):
        import weakref

        self.seeds, self.made, self.alive_at_each = seeds, [], []
        self._ref = weakref.ref

    def __len__(self) -> int:
        return len(self.seeds)

    def __getitem__(self, k: int) -> np.ndarray:
        self.alive_at_each.append(sum(ref() is not None for ref in self.made))
        values = rdm_upper(random_patterns(self.seeds[k], n=60))
        self.made.append(self._ref(values))
        return values


@pytest.mark.parametrize("method", ["spearman", "pearson", "cosine"])
def test_prepare_makes_each_fixed_rdm_once_and_holds_at_most_two(method):
    """prepare reads a sequence of fixed RDMs one index at a time (CKA's kernels, RDMs kept on disk:
    97 MB each at BOLD5000's size), holding no more than the pair spearman ranks together, and
    gives the bits of the same RDMs handed over as arrays."""
    permuted = rdm_upper(random_patterns(1, n=60))
    lazy = _MadeWhenIndexed([2, 3, 4, 5, 6])
    found = prepare(permuted, lazy, method)
    expected = prepare(permuted, [rdm_upper(random_patterns(seed, n=60)) for seed in lazy.seeds], method)
    assert len(lazy.made) == 5  # each indexed once
    assert max(lazy.alive_at_each) <= (1 if method == "spearman" else 0)
    for field in ("x_square", "weights", "observed"):
        assert np.array_equal(getattr(found, field), getattr(expected, field))
