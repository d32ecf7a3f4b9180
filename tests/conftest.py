"""Shared fixtures: the ``xp`` fixture runs a test on NumPy, and on CuPy where a GPU is present."""

import os

import numpy as np
import pytest

from minissd import backend

os.environ.setdefault("MPLBACKEND", "Agg")

_XP_PARAMS = [pytest.param("numpy", id="numpy")]
_XP_PARAMS.append(
    pytest.param(
        "cupy",
        id="cupy",
        marks=[
            pytest.mark.gpu,
            pytest.mark.skipif(not backend.gpu_available(), reason=backend.gpu_unavailable_reason() or ""),
        ],
    )
)


@pytest.fixture(params=_XP_PARAMS)
def xp(request):
    """The array module under test: numpy, or cupy on a machine with a GPU."""
    if request.param == "numpy":
        return np
    return backend.cupy_module()


@pytest.fixture
def rng():
    """A seeded generator, so every failure reproduces."""
    return np.random.default_rng(0)


def to_numpy(array):
    return backend.to_numpy(array)
