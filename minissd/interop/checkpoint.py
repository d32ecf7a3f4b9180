"""Reading other frameworks' weight files as NumPy state dicts (PyTorch imported only here).

    read_checkpoint(path)      .pth / .pt (needs PyTorch) or .npz -> {name: numpy array}
    unwrap_state_dict(state)   {"model": ...} / {"state_dict": ...} and DataParallel's "module." removed
    float32_array(value, name) a tensor or array -> float32 NumPy, a clear error for integers

An .npz holding the same names (``numpy.savez("state.npz", **{k: v.numpy() for k, v in
torch.load(path).items()})``, made where PyTorch is installed) converts where it is not.
"""

from __future__ import annotations

import os

import numpy as np

_WRAPPERS = ("model", "state_dict")  # training scripts save {"model": state_dict, "epoch": ...}


def unwrap_state_dict(state_dict) -> dict:
    """The state dict inside a training checkpoint, without DataParallel's "module." prefix."""
    if not hasattr(state_dict, "keys"):
        raise TypeError(f"a state dict is a mapping name -> tensor; got {type(state_dict).__name__}")
    for key in _WRAPPERS:
        if key in state_dict and hasattr(state_dict[key], "keys"):
            state_dict = state_dict[key]
            break
    if state_dict and all(str(name).startswith("module.") for name in state_dict):
        state_dict = {name[len("module."):]: value for name, value in state_dict.items()}
    return dict(state_dict)


def _numpy(value):
    """A torch tensor (without importing torch) -> NumPy; floating tensors of any width -> float32."""
    if hasattr(value, "detach"):
        value = value.detach().cpu()
        if value.is_floating_point():
            value = value.float()  # bfloat16 / float16 have no NumPy twin (bfloat16) or lose nothing
        return value.numpy()
    return np.asarray(value)


def float32_array(value, name: str, what: str = "checkpoint") -> np.ndarray:
    """``value`` (tensor or array) as float32 NumPy; a TypeError naming ``name`` unless floating point."""
    array = _numpy(value)
    if array.dtype.kind != "f":
        raise TypeError(f"{what} tensor {name!r} has dtype {array.dtype}; expected floating point")
    return array.astype(np.float32, copy=False)


def read_checkpoint(path) -> dict[str, np.ndarray]:
    """The state dict in ``path`` as NumPy arrays, unwrapped (``unwrap_state_dict``).

    A .pth / .pt file is read with ``torch.load(..., weights_only=True)`` (PyTorch imported only
    here, nothing executed from the file); entries that are not tensors (an epoch counter) are
    dropped. An .npz file (the same names) needs no PyTorch. Floating tensors become float32.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if os.path.isdir(path):
        raise ValueError(f"{path} is a folder, not a checkpoint file (.pth, .pt or .npz)")
    if path.endswith(".npz"):
        try:
            with np.load(path, allow_pickle=False) as data:
                return unwrap_state_dict({name: data[name] for name in data.files})
        except (OSError, ValueError, EOFError) as error:
            raise ValueError(f"{path} is not a readable .npz file ({error})") from None
    try:
        import torch
    except ImportError:
        raise ImportError(
            f"reading {path} needs PyTorch (pip install torch), which minissd does not otherwise use; "
            "or, where PyTorch is installed, save the state dict with numpy.savez and convert the .npz"
        ) from None
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a corrupt file, or not a torch file at all
        first = str(error).strip().split(". ")[0].splitlines()[0] if str(error).strip() else ""
        raise ValueError(f"{path} is not a readable PyTorch checkpoint of tensors ({type(error).__name__}"
                         f"{': ' + first if first else ''})") from None
    if not hasattr(checkpoint, "keys"):
        raise ValueError(f"{path} holds a {type(checkpoint).__name__}, not a state dict")
    checkpoint = unwrap_state_dict(checkpoint)
    return {name: _numpy(value) for name, value in checkpoint.items() if hasattr(value, "shape")}
