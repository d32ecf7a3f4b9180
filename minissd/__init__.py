"""minissd: SSD, the Single Shot MultiBox Detector, from scratch in NumPy (and CuPy).

The package follows the structure of SSD itself; each module is one idea:

    backend   NumPy / CuPy selection (the only module that imports CuPy)
    boxes     box formats, IoU, offset encoding
    priors    default boxes: scales, shapes, centres, presets
    matching  ground truth -> default boxes (bipartite + IoU threshold)
    loss      MultiBox loss: smooth L1 + softmax cross-entropy, hard negatives
    nms       non-maximum suppression and detection post-processing
"""

__version__ = "0.1.0"
