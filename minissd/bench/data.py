"""How long the data side takes per image: ``python -m minissd.bench data [--images N] [--size S]``.

Measures, on one core of the host, for ShapesDataset pictures of S x S:

    generation            ShapesDataset[i]
    augmentation          SSDAugmentation(S) on the generated samples
    matching              minissd.matching.match against the default boxes
                          (the "tiny" preset at S = 128, else the paper's
                          rule on maps S/8, S/16, ... 1)
    loader, no thread     DataLoader(prefetch=0): all of the above plus batching

Each figure is the best of ``--repeats`` passes over ``--images`` pictures, each
after an untimed pass (``timing.best_seconds`` with the CPU time of this process:
the best pass is the least disturbed by other work on a shared machine), in
milliseconds per image.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from ..data.augment import SSDAugmentation
from ..data.loader import DataLoader
from ..data.shapes import ShapesDataset
from ..matching import match
from ..priors import default_boxes, paper_config
from .timing import best_seconds, machine_description


def _best_ms_per_image(work, count: int, repeats: int) -> float:
    return best_seconds(work, repeats, clock=time.process_time) / count * 1e3


def priors_for(size: int) -> np.ndarray:
    if size == 128:
        return default_boxes("tiny")
    maps, side = [], size // 8
    while side >= 1:
        maps.append(side)
        side //= 2
    return default_boxes(paper_config(maps, image_size=size))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m minissd.bench data", description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    if min(args.images, args.size, args.repeats) < 1:
        parser.error("--images, --size and --repeats must be positive")
    count, size = args.images, args.size
    for line in machine_description():
        print(line)

    dataset = ShapesDataset("train", num_images=count, image_size=size)
    augment = SSDAugmentation(size)
    priors = priors_for(size)
    samples = [dataset[i] for i in range(count)]
    augmented = [augment(s.image, s.boxes, s.labels, np.random.default_rng(i)) for i, s in enumerate(samples)]

    results = {
        "generation": _best_ms_per_image(lambda: [dataset[i] for i in range(count)], count, args.repeats),
        "augmentation": _best_ms_per_image(
            lambda: [augment(s.image, s.boxes, s.labels, np.random.default_rng(i)) for i, s in enumerate(samples)],
            count, args.repeats),
        "matching": _best_ms_per_image(lambda: [match(b, l, priors) for _, b, l in augmented], count, args.repeats),
    }
    results["augmentation + matching"] = results["augmentation"] + results["matching"]
    loader = DataLoader(dataset, 32, priors, augment, prefetch=0)
    results["loader, no thread (all)"] = _best_ms_per_image(lambda: [b for b in loader], len(loader) * 32,
                                                            args.repeats)
    print(f"ShapesDataset {size} x {size}, {count} images, {len(priors)} default boxes, "
          f"best of {args.repeats} (CPU ms per image):")
    for name, value in results.items():
        print(f"  {name:<26} {value:6.2f} ms")

