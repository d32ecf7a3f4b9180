"""The backend: array-module selection, device names, the mixing error."""

import types

import numpy as np
import pytest

from minissd import backend


class FakeDeviceArray(np.ndarray):
    """Stands in for cupy.ndarray so the mixing rule is testable without a GPU."""


@pytest.fixture
def fake_cupy(monkeypatch):
    fake = types.SimpleNamespace(ndarray=FakeDeviceArray, __name__="fakecupy")
    monkeypatch.setattr(backend, "_cupy", fake)
    return fake


def test_numpy_inputs_give_numpy():
    assert backend.get_array_module(np.zeros(3), np.ones((2, 2))) is np


def test_non_arrays_are_ignored():
    assert backend.get_array_module(None, 3, [1, 2], np.zeros(1)) is np


def test_device_arrays_give_the_device_module(fake_cupy):
    device_array = np.zeros(3).view(FakeDeviceArray)
    assert backend.get_array_module(device_array) is fake_cupy
    assert backend.device_of(device_array) == "gpu"
    assert backend.device_of(np.zeros(3)) == "cpu"


def test_mixing_host_and_device_arrays_names_positions(fake_cupy):
    device_array = np.zeros(3).view(FakeDeviceArray)
    with pytest.raises(backend.DeviceMismatchError, match=r"positions \[0, 2\] are NumPy.*positions \[1\] are CuPy"):
        backend.get_array_module(np.zeros(3), device_array, np.zeros(3))


def test_default_device_reads_environment(monkeypatch):
    monkeypatch.delenv(backend.DEVICE_ENV, raising=False)
    assert backend.default_device() == "cpu"
    monkeypatch.setenv(backend.DEVICE_ENV, " GPU ")
    assert backend.default_device() == "gpu"
    monkeypatch.setenv(backend.DEVICE_ENV, "tpu")
    with pytest.raises(ValueError, match="MINISSD_DEVICE='tpu'"):
        backend.default_device()


def test_unknown_device_name():
    with pytest.raises(ValueError, match="unknown device 'cuda'"):
        backend.resolve_device("cuda")


@pytest.mark.skipif(backend.gpu_available(), reason="this machine has a GPU")
def test_gpu_without_cupy_or_device_is_a_clear_error():
    with pytest.raises(backend.DeviceUnavailableError, match="device 'gpu' was asked for"):
        backend.resolve_device("gpu")
    with pytest.raises(backend.DeviceUnavailableError):
        backend.to_device(np.zeros(2), "gpu")


def test_cpu_round_trip(xp):
    array = xp.arange(6, dtype=xp.float32).reshape(2, 3)
    host = backend.to_numpy(array)
    assert isinstance(host, np.ndarray) and host.dtype == np.float32
    np.testing.assert_array_equal(host, np.arange(6).reshape(2, 3))
    assert isinstance(backend.to_device(host, "cpu"), np.ndarray)
