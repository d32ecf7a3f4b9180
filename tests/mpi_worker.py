"""Run by ``mpiexec -n 2`` from tests/test_distributed.py: three SGD steps of data-parallel training.

    mpiexec -n 2 python tests/mpi_worker.py {ssd300|tiny} OUTPUT_FOLDER

Rank 0 writes OUTPUT_FOLDER/model.npz; the test compares it with one process (SSD300) or with the
in-process thread ranks (the tiny SSD, whose BatchNorm normalises each shard by itself).
"""

import sys

from minissd import distributed, models
from minissd.backend import blas_threads
from minissd.data import ShapesDataset
from minissd.train import TrainConfig, train


def setup(model_kind: str):
    """(dataset, config, make_model) of the run, the same for the worker and the test's reference."""
    if model_kind == "ssd300":  # in float64: float32 rounding can flip near-tied hard negatives between runs
        config = TrainConfig(iterations=3, batch_size=2, lr=1e-3, prefetch=0, seed=3, log_every=1,
                             checkpoint_every=3, warmup_iterations=0)
        return ShapesDataset("train", num_images=6), config, lambda: models.ssd300(6, seed=1).astype("float64")
    config = TrainConfig(iterations=3, batch_size=4, lr=0.01, prefetch=0, seed=3, log_every=1,
                         checkpoint_every=3, warmup_iterations=0)
    return (ShapesDataset("train", num_images=12), config,
            lambda: models.tiny_ssd(6, widths=(4, 6, 8, 8, 8, 8, 8, 8), seed=0))


def main(model_kind: str, folder: str) -> int:
    group = distributed.world("cpu")
    dataset, config, make_model = setup(model_kind)
    with blas_threads(1):
        train(make_model(), dataset, config, folder, progress=False, group=group)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
