"""Data-parallel training: K processes, one global batch, one allreduce per step.

SGD on a batch of B pictures steps along the gradient of the batch's loss. SSD's
loss is a sum over pictures divided by N, the positives of the *whole* batch:

    g = (1/N) sum_i grad l_i                 (i over the B pictures)

Split the batch into K shards of B/K pictures, one per process (rank). Rank r
computes only its share, g_r = (1/N) sum_{i in shard r} grad l_i, and

    g = g_0 + g_1 + ... + g_(K-1)

so one **allreduce** (every rank contributes its buffer, every rank receives the
sum) gives all of them the batch's gradient. Every rank then takes the same
optimiser step from the same weights: the weights never travel, they stay equal
by construction. N itself is a sum over the shards, one scalar allreduce before
the loss. The gradients go as one flat buffer (``GradientBuffer``), not one call
per tensor: an allreduce costs a fixed latency plus its bytes, so one big call is
cheaper than 71 small ones.

What is exact and what is not:

- The gradient is the batch's, up to float32 summation order (a sum split into K
  partial sums and added again): a K-process run follows the one-process run on the
  same global batches to about 1e-6 relative (``tests/test_distributed.py``).
- BatchNorm (the tiny SSD) normalises each shard by its own statistics, as PyTorch's
  DistributedDataParallel without SyncBatchNorm: its forward differs from one
  process's on the whole batch. The running statistics are rank 0's, broadcast to
  the others after every step (DDP broadcasts rank 0's buffers too), so every rank
  holds the same model. SSD300 and SSD512 have no BatchNorm: for them the K-process
  run is the one-process run.

Transports (``world``):

    SingleProcess   one process: every reduction is the identity
    MPIGroup        processes started by ``mpiexec -n K`` (mpi4py; the pip extra
                    ``minissd[distributed]`` brings mpi4py and the MPICH wheel)
    NCCLGroup       the same on GPUs: CuPy arrays reduced on the devices with NCCL
                    (``cupy.cuda.nccl``), set up over MPI; chosen when the model is on
                    a GPU
    ThreadGroup     K "ranks" as threads of one process, for notebooks and tests: the
                    same GradientBuffer and training step, another transport
"""

from __future__ import annotations

import os
import threading

import numpy as np

from . import backend

LAUNCH_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "PMIX_SIZE")


class DistributedError(RuntimeError):
    """Several processes were asked for but cannot run together (no mpi4py, bad batch split, ...)."""


# --------------------------------------------------------------------------
# transports
# --------------------------------------------------------------------------

class SingleProcess:
    """One process: rank 0 of 1; every reduction is the identity."""

    rank, size = 0, 1
    name = "single process"

    def allreduce_sum(self, buffer):
        return buffer

    def broadcast(self, value):
        return value

    def broadcast_array(self, array) -> None:
        pass

    def barrier(self) -> None:
        pass

    def abort(self, code: int = 1) -> None:  # nothing to stop but ourselves: the caller raises
        pass


class MPIGroup:
    """The processes ``mpiexec`` started (mpi4py's COMM_WORLD); host arrays reduced by MPI."""

    name = "MPI"

    def __init__(self, comm=None):
        from mpi4py import MPI

        self._mpi = MPI
        self.comm = comm or MPI.COMM_WORLD
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()

    def allreduce_sum(self, buffer):
        """Sum ``buffer`` (a contiguous NumPy array) over the ranks, in place; returns it."""
        self.comm.Allreduce(self._mpi.IN_PLACE, buffer, op=self._mpi.SUM)
        return buffer

    def broadcast(self, value):
        return self.comm.bcast(value, root=0)

    def broadcast_array(self, array) -> None:
        self.comm.Bcast(array, root=0)

    def barrier(self) -> None:
        self.comm.Barrier()

    def abort(self, code: int = 1) -> None:
        self.comm.Abort(code)


class NCCLGroup(MPIGroup):
    """MPI processes with one GPU each; CuPy buffers reduced on the devices by NCCL.

    Rank r uses GPU r modulo the GPUs of its machine; the NCCL unique id travels over MPI.
    Written for the GPU machines; not run on a GPU yet (docs/distributed.md).
    """

    name = "NCCL"

    def __init__(self, comm=None):
        super().__init__(comm)
        cupy = backend.cupy_module()
        if cupy is None:
            raise DistributedError("NCCL needs CuPy (pip install minissd[gpu])")
        from cupy.cuda import nccl

        local = int(os.environ.get("MPI_LOCALRANKID", os.environ.get("OMPI_COMM_WORLD_LOCAL_RANK", self.rank)))
        cupy.cuda.Device(local % cupy.cuda.runtime.getDeviceCount()).use()
        unique_id = self.comm.bcast(nccl.get_unique_id() if self.rank == 0 else None, root=0)
        self._nccl, self._cupy = nccl, cupy
        self.nccl = nccl.NcclCommunicator(self.size, unique_id, self.rank)

    def allreduce_sum(self, buffer):
        if not backend.is_cupy_array(buffer):
            return super().allreduce_sum(buffer)
        kind = {np.dtype(np.float32): self._nccl.NCCL_FLOAT32, np.dtype(np.float64): self._nccl.NCCL_FLOAT64}
        stream = self._cupy.cuda.get_current_stream().ptr
        self.nccl.allReduce(buffer.data.ptr, buffer.data.ptr, buffer.size, kind[np.dtype(buffer.dtype)],
                            self._nccl.NCCL_SUM, stream)
        return buffer

    def broadcast_array(self, array) -> None:
        if not backend.is_cupy_array(array):
            return super().broadcast_array(array)
        kind = {np.dtype(np.float32): self._nccl.NCCL_FLOAT32, np.dtype(np.float64): self._nccl.NCCL_FLOAT64}
        self.nccl.bcast(array.data.ptr, array.size, kind[np.dtype(array.dtype)], 0,
                        self._cupy.cuda.get_current_stream().ptr)


class ThreadGroup:
    """K ranks as threads of one process (notebooks, tests): ``ThreadGroup.start(K)`` gives K handles.

    The reduction is the MPI one's arithmetic (a sum of the ranks' buffers); only the
    transport differs: a shared list and a barrier instead of messages.
    """

    name = "threads"

    def __init__(self, rank: int, shared: dict):
        self.rank, self.size, self._shared = rank, shared["size"], shared

    @classmethod
    def start(cls, size: int) -> list:
        shared = {"size": int(size), "barrier": threading.Barrier(int(size)), "slots": [None] * int(size)}
        return [cls(rank, shared) for rank in range(int(size))]

    def allreduce_sum(self, buffer):
        slots, barrier = self._shared["slots"], self._shared["barrier"]
        slots[self.rank] = buffer.copy()
        barrier.wait()
        total = slots[0].copy()
        for other in slots[1:]:
            total += other
        barrier.wait()  # everyone has read the slots before any rank writes its next buffer
        buffer[...] = total
        return buffer

    def broadcast(self, value):
        slots, barrier = self._shared["slots"], self._shared["barrier"]
        if self.rank == 0:
            slots[0] = value
        barrier.wait()
        value = slots[0]
        barrier.wait()
        return value

    def broadcast_array(self, array) -> None:
        array[...] = self.broadcast(array.copy() if self.rank == 0 else None)

    def barrier(self) -> None:
        self._shared["barrier"].wait()

    def abort(self, code: int = 1) -> None:
        self._shared["barrier"].abort()


def launched_size() -> int:
    """How many processes the launcher (mpiexec, srun with PMI) says this job has; 1 otherwise."""
    for name in LAUNCH_VARIABLES:
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return 1


def world(device: str = "cpu"):
    """The group of this job: ``SingleProcess`` unless started by ``mpiexec -n K`` with K > 1."""
    if launched_size() <= 1:
        return SingleProcess()
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        raise DistributedError(
            f"this process was started as one of {launched_size()} (mpiexec), but mpi4py is not installed: "
            "pip install 'minissd[distributed]' (mpi4py and the MPICH wheel)"
        ) from None
    return NCCLGroup() if device == "gpu" else MPIGroup()


# --------------------------------------------------------------------------
# the reduction
# --------------------------------------------------------------------------

class GradientBuffer:
    """All gradients of a model in one flat buffer, reduced with one allreduce.

    names: the gradients to reduce, in a fixed order (every rank must use the same:
    ``model.grads``' order is fixed by the architecture). ``extra``: a few scalars sent
    in the same call (the loss and its parts, for the log), appended at the end.
    """

    def __init__(self, grads: dict, names=None, extra: int = 0):
        self.names = list(grads if names is None else names)
        arrays = [grads[name] for name in self.names]
        xp = backend.get_array_module(*arrays)
        dtype = arrays[0].dtype
        self.sizes = [int(a.size) for a in arrays]
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64)
        self.extra = int(extra)
        self.flat = xp.zeros(int(self.offsets[-1]) + self.extra, dtype=dtype)  # (sum of sizes + extra,)

    @property
    def nbytes(self) -> int:
        return int(self.flat.nbytes)

    def reduce(self, group, grads: dict, scalars=()):
        """Sum ``grads`` (in place) and ``scalars`` over the ranks; returns the summed scalars."""
        xp = backend.get_array_module(self.flat)
        for name, start, stop in zip(self.names, self.offsets[:-1], self.offsets[1:]):
            self.flat[start:stop] = grads[name].reshape(-1)  # pack
        if self.extra:
            self.flat[self.offsets[-1]:] = xp.asarray(np.asarray(scalars, dtype=np.float64), dtype=self.flat.dtype)
        group.allreduce_sum(self.flat)
        for name, start, stop in zip(self.names, self.offsets[:-1], self.offsets[1:]):
            grads[name][...] = self.flat[start:stop].reshape(grads[name].shape)  # unpack
        return [float(v) for v in backend.to_numpy(self.flat[self.offsets[-1]:])]


def sum_scalar(group, value: float, like=None) -> float:
    """One number summed over the ranks (the positives of the global batch)."""
    if group.size == 1:
        return float(value)
    buffer = np.array([value], dtype=np.float64)
    group.allreduce_sum(buffer)
    return float(buffer[0])


def broadcast_buffers(group, buffers: dict) -> None:
    """Every rank takes rank 0's buffers (BatchNorm's running statistics), as DDP does."""
    if group.size == 1:
        return
    for array in buffers.values():
        if backend.is_cupy_array(array) and not isinstance(group, NCCLGroup):
            host = backend.to_numpy(array).copy()
            group.broadcast_array(host)
            array[...] = backend.to_device(host, "gpu")
        else:
            group.broadcast_array(array)


def shard_of(batch_size: int, group) -> tuple[int, int]:
    """(rank, size) for the DataLoader's ``shard``, checking that the batch splits evenly."""
    if batch_size % group.size:
        raise DistributedError(
            f"the batch of {batch_size} pictures does not split evenly over {group.size} processes: "
            f"choose a --batch-size that is a multiple of {group.size}"
        )
    return group.rank, group.size


def abort_job(group, error: BaseException) -> None:
    """One rank failed: say so on stderr (with the rank) and stop every process of the job.

    Without this the other ranks would wait forever in their next allreduce.
    """
    import sys

    if isinstance(error, KeyboardInterrupt):
        message = "interrupted"
    else:
        message = " ".join(str(error).split()) or type(error).__name__
    print(f"minissd: rank {group.rank} of {group.size} stopped: {message}; stopping all {group.size} processes",
          file=sys.stderr, flush=True)
    group.abort(1)
