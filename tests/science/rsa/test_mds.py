"""Classical MDS of an RDM (the rsa figures' spaces) against scikit-learn's."""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import pdist, squareform
from sklearn.manifold import ClassicalMDS

from neurolatent.science.rsa.mds import classical_mds


def test_classical_mds_equals_scikit_learn():
    """The top eigenpairs by ARPACK give scikit-learn's coordinates, signs included."""
    square = squareform(pdist(np.random.default_rng(3).normal(size=(60, 5)), "correlation"))
    np.testing.assert_allclose(classical_mds(square),
                               ClassicalMDS(2, metric="precomputed").fit_transform(square), atol=1e-10)


def test_classical_mds_recovers_a_planar_configuration_up_to_rotation():
    """Euclidean distances of points in a plane: MDS gives the points back, up to a rigid motion
    (equal pairwise distances), and more components than the plane holds have zero extent."""
    points = np.random.default_rng(0).normal(size=(30, 2))
    square = squareform(pdist(points))
    coordinates = classical_mds(square)
    np.testing.assert_allclose(squareform(pdist(coordinates)), square, atol=1e-8)
