"""Every benchmark and profiler of minissd, one module per subject, one entry point.

    python -m minissd.bench network ...    whole networks: SSD300 (against torchvision) and the tiny SSD
    python -m minissd.bench ops ...        single layers: the fast path, its im2col reference, PyTorch
    python -m minissd.bench layers ...     where a model's time goes, layer by layer
    python -m minissd.bench gpu ...        the GPU table: images/s against torchvision on one device
    python -m minissd.bench data ...       the data side: generation, augmentation, matching, loader
    python -m minissd.bench evaluate ...   voc_ap and coco_ap against pycocotools
    python -m minissd.bench distributed .. 1 process x 2 threads against 2 processes (mpiexec) x 1 thread
    python -m minissd.bench trees ...      two minissd trees (before / after) timed in alternation

``timing`` holds the rules they share: best of N, each framework timed right after an untimed
call of its own, in the same rounds as the framework it is compared with
(``best_of_paired``), and the machine line printed above every table (CPU model, load,
NumPy's BLAS and its threads). Nothing in the library imports this package, and no test
asserts a speed: timings live here only.
"""

from .network import random_targets
from .timing import Timing, best_of_paired, best_seconds, machine_description, median_seconds

SUBCOMMANDS = {
    "network": "whole networks: SSD300 against torchvision's ssd300_vgg16, and the tiny SSD",
    "ops": "single layers: minissd's fast path, its im2col reference and PyTorch",
    "layers": "where a model spends its time, layer by layer",
    "gpu": "the GPU table: images/s of minissd and torchvision on one device",
    "data": "the data side per image: generation, augmentation, matching, the loader",
    "evaluate": "voc_ap and coco_ap on a COCO-sized synthetic set, beside pycocotools",
    "distributed": "data-parallel throughput: 1 process x 2 threads against 2 processes x 1 thread, the allreduce's share",
    "trees": "two minissd trees (before / after), the same model and pass, timed in alternation",
}

__all__ = ["SUBCOMMANDS", "Timing", "best_of_paired", "best_seconds", "machine_description", "median_seconds",
           "random_targets"]
