"""Data-parallel training: the shards of a global batch add up to it, one allreduce per step, and K ranks
follow the one-process run. In process with ThreadGroup (the same reduction code), and with real processes
under ``mpiexec -n 2`` (skipped, with the reason, where MPI cannot start)."""

import importlib.util
import os
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest

from minissd import distributed, models
from minissd.data import ShapesDataset
from minissd.loss import multibox_loss
from minissd.train import TrainConfig, make_loader, make_optimizer, train

from .test_train import MINI, mini_model, register_mini, tiny_data  # noqa: F401 (the fixture registers MINI)

HERE = os.path.dirname(os.path.abspath(__file__))
MPIEXEC = shutil.which("mpiexec") or (os.path.join(os.path.dirname(sys.executable), "mpiexec")
                                      if os.path.exists(os.path.join(os.path.dirname(sys.executable), "mpiexec"))
                                      else None)
HAS_MPI = importlib.util.find_spec("mpi4py") is not None and MPIEXEC is not None
MPI_REASON = "needs mpi4py and mpiexec: pip install 'minissd[distributed]'"


def assert_same_run(model, reference, start, what, atol=1e-5):
    """Equal weights to summation order (float32: 1e-5 relative plus ``atol``); while
    the steps moved them by far more than that, so the comparison is not vacuous."""
    moved = max(float(np.abs(reference.params[n] - start.params[n]).max()) for n in reference.params)
    assert moved > 1e-3, f"{what}: the training steps barely moved the weights ({moved})"
    for name, value in reference.params.items():
        np.testing.assert_allclose(model.params[name], value, rtol=1e-5, atol=atol, err_msg=f"{what}: {name}")


def sgd(**changes):
    values = dict(iterations=3, batch_size=4, lr=0.01, log_every=1, checkpoint_every=3, prefetch=0, seed=3,
                  warmup_iterations=0)
    values.update(changes)
    return TrainConfig(**values)


def run_ranks(size, make_model, dataset, config, folder):
    """Train on ``size`` thread-ranks; returns rank 0's model (every rank must hold the same weights)."""
    groups = distributed.ThreadGroup.start(size)
    trained, errors = [None] * size, []

    def work(group):
        try:
            model = make_model()
            train(model, dataset, config, folder, progress=False, group=group)
            trained[group.rank] = model
        except BaseException as error:  # noqa: BLE001 - reported by the test
            errors.append(error)

    threads = [threading.Thread(target=work, args=(group,)) for group in groups]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    for other in trained[1:]:
        for name, value in trained[0].params.items():
            np.testing.assert_array_equal(other.params[name], value, err_msg=f"ranks differ on {name}")
    return trained[0]


# --------------------------------------------------------------------------
# the pieces
# --------------------------------------------------------------------------

def test_shard_losses_add_up_to_the_batch_loss(rng):
    loc = rng.standard_normal((4, 20, 4)).astype(np.float64)
    conf = rng.standard_normal((4, 20, 3))
    loc_t = rng.standard_normal((4, 20, 4))
    conf_t = rng.integers(0, 3, (4, 20)) * (rng.uniform(size=(4, 20)) < 0.3)
    whole = multibox_loss(loc, conf, loc_t, conf_t)
    n = int((conf_t > 0).sum())
    parts = [multibox_loss(loc[s], conf[s], loc_t[s], conf_t[s], num_positives=n) for s in (slice(0, 2), slice(2, 4))]
    assert sum(float(p.loss) for p in parts) == pytest.approx(float(whole.loss), rel=1e-12)
    np.testing.assert_allclose(np.concatenate([p.grad_conf for p in parts]), whole.grad_conf, rtol=1e-12)
    np.testing.assert_allclose(np.concatenate([p.grad_loc for p in parts]), whole.grad_loc, rtol=1e-12)
    with pytest.raises(ValueError, match="num_positives"):
        multibox_loss(loc, conf, loc_t, conf_t, num_positives=-1)


def test_loader_shards_are_the_parts_of_the_one_process_batch():
    model = mini_model()
    dataset = tiny_data()
    whole = make_loader(model, dataset, sgd())
    shards = [make_loader(model, dataset, sgd(), shard=(rank, 2)) for rank in range(2)]
    batch = next(iter(whole.epoch(0)))
    parts = [next(iter(shard.epoch(0))) for shard in shards]
    np.testing.assert_array_equal(np.concatenate([p.images for p in parts]), batch.images)
    np.testing.assert_array_equal(np.concatenate([p.conf_targets for p in parts]), batch.conf_targets)
    with pytest.raises(ValueError, match="count dividing the batch size 4"):
        make_loader(model, dataset, sgd(), shard=(0, 3))


def test_one_allreduce_carries_every_gradient_and_the_loss():
    grads = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(4, np.float32)}
    calls = []

    class Doubling:  # a group of two identical ranks
        rank, size = 0, 2

        def allreduce_sum(self, buffer):
            calls.append(buffer.size)
            buffer *= 2
            return buffer

    buffer = distributed.GradientBuffer(grads, extra=3)
    summed = buffer.reduce(Doubling(), grads, [1.0, 0.25, 0.75])
    assert calls == [6 + 4 + 3] and buffer.nbytes == 13 * 4
    np.testing.assert_array_equal(grads["a"], 2 * np.arange(6).reshape(2, 3))
    assert summed == [2.0, 0.5, 1.5]


def test_a_batch_that_does_not_split_is_refused():
    group = distributed.ThreadGroup.start(3)[0]
    with pytest.raises(distributed.DistributedError, match="multiple of 3"):
        distributed.shard_of(4, group)


def test_without_a_launcher_the_world_is_one_process(monkeypatch):
    for name in distributed.LAUNCH_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert isinstance(distributed.world(), distributed.SingleProcess)
    monkeypatch.setenv("PMI_SIZE", "2")
    monkeypatch.setattr(importlib.util, "find_spec", importlib.util.find_spec)
    if importlib.util.find_spec("mpi4py") is None:
        with pytest.raises(distributed.DistributedError, match="pip install 'minissd\\[distributed\\]'"):
            distributed.world()


# --------------------------------------------------------------------------
# K ranks against one process
# --------------------------------------------------------------------------

def test_two_ranks_follow_one_process_without_batchnorm(tmp_path):
    """BatchNorm-free (SSD300's path): three SGD steps on 2 x 2 pictures = three on 4, to float32 rounding."""
    one = mini_model()
    train(one, tiny_data(), sgd(), tmp_path / "one", progress=False)
    two = run_ranks(2, mini_model, tiny_data(), sgd(), tmp_path / "two")
    assert_same_run(two, one, mini_model(), "2 thread ranks vs 1 process")
    assert (tmp_path / "two" / "model.npz").exists() and (tmp_path / "two" / "train_log.csv").exists()


def _tiny(seed=0):
    return models.tiny_ssd(6, widths=(4, 6, 8, 8, 8, 8, 8, 8), seed=seed)


def _per_shard_batchnorm_reference(dataset, config, shards=2):
    """One process doing by hand what K ranks do: BatchNorm statistics per shard, rank 0's running ones kept."""
    model = _tiny()
    model.train()
    optimizer = make_optimizer(model, config)
    loader = make_loader(model, dataset, config)
    batches = loader.epoch(0)
    part = config.batch_size // shards
    for _ in range(config.iterations):
        batch = next(batches)
        positives = int((batch.conf_targets > 0).sum())
        model.zero_grad()
        start = {name: b.copy() for name, b in model.buffers.items()}
        after_rank0 = None
        for rank in range(shards):
            rows = slice(rank * part, (rank + 1) * part)
            for name, b in model.buffers.items():
                b[...] = start[name]
            loc, conf = model.forward(batch.images[rows])
            out = multibox_loss(loc, conf, batch.loc_targets[rows], batch.conf_targets[rows], num_positives=positives)
            model.backward(out.grad_loc, out.grad_conf)  # adds into the grads: the sum over the shards
            if rank == 0:
                after_rank0 = {name: b.copy() for name, b in model.buffers.items()}
        for name, b in model.buffers.items():
            b[...] = after_rank0[name]
        optimizer.step()
    batches.close()
    return model


def test_two_ranks_with_batchnorm_normalise_each_shard_by_itself(tmp_path):
    dataset = ShapesDataset("train", num_images=12)  # three batches: one epoch
    config = sgd(lr=0.01)
    reference = _per_shard_batchnorm_reference(dataset, config)
    two = run_ranks(2, _tiny, dataset, config, tmp_path / "two")
    assert_same_run(two, reference, _tiny(), "2 thread ranks vs BatchNorm per shard by hand")
    for name, value in reference.buffers.items():  # rank 0's running statistics
        np.testing.assert_allclose(two.buffers[name], value, rtol=2e-5, atol=2e-6, err_msg=name)
    one = _tiny()
    train(one, dataset, config, tmp_path / "one", progress=False)
    assert any(not np.allclose(one.params[n], two.params[n], rtol=1e-4) for n in one.params)  # not the same


def test_a_failing_rank_stops_all_of_them(tmp_path, capsys):
    groups = distributed.ThreadGroup.start(2)
    errors = []

    class Broken:
        def __len__(self):
            return 8

        def __getitem__(self, index):  # rank 1's part of the first batch cannot be read
            raise ValueError("picture 5 cannot be decoded")

    def work(group):
        try:
            dataset = tiny_data(8) if group.rank == 0 else Broken()
            train(mini_model(), dataset, sgd(), tmp_path, progress=False, group=group)
        except BaseException as error:  # noqa: BLE001
            errors.append((group.rank, type(error).__name__))

    threads = [threading.Thread(target=work, args=(g,)) for g in groups]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a rank was left waiting"
    assert sorted(rank for rank, _ in errors) == [0, 1]
    assert "rank 1 of 2 stopped: picture 5 cannot be decoded" in capsys.readouterr().err


# --------------------------------------------------------------------------
# real processes
# --------------------------------------------------------------------------

def _mpiexec(arguments, timeout=600):
    environment = dict(os.environ, PYTHONPATH=os.path.dirname(HERE), OMP_NUM_THREADS="1",
                       OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return subprocess.run([MPIEXEC, "-n", "2", *arguments], capture_output=True, text=True, timeout=timeout,
                          env=environment)


@pytest.mark.skipif(not HAS_MPI, reason=MPI_REASON)
@pytest.mark.parametrize("model_kind", ["ssd300", "tiny"])
def test_mpiexec_two_processes_follow_one(tmp_path, model_kind):
    """SSD300 (no BatchNorm), in float64: equal to one process on the same global batches to 1e-10 (in
    float32, rounding can flip near-tied hard negatives, which moves a few weights by ~1e-5). The tiny SSD
    (BatchNorm), in float32: equal to the in-process ranks, the same code over threads instead of MPI."""
    done = _mpiexec([sys.executable, os.path.join(HERE, "mpi_worker.py"), model_kind, str(tmp_path / "mpi")])
    assert done.returncode == 0, done.stdout + done.stderr
    mpi = models.load(tmp_path / "mpi" / "model.npz", device="cpu")  # saved as float32: compare in float32
    sys.path.insert(0, HERE)
    import mpi_worker

    dataset, config, make_model = mpi_worker.setup(model_kind)
    if model_kind == "ssd300":
        reference = make_model()
        train(reference, dataset, config, tmp_path / "one", progress=False)
    else:
        reference = run_ranks(2, make_model, dataset, config, tmp_path / "threads")
    if model_kind == "ssd300":  # the file holds the float64 weights rounded to float32
        reference.astype(np.float32)
    assert_same_run(mpi, reference, make_model().astype(np.float32), f"mpiexec -n 2 vs reference ({model_kind})",
                    atol=1e-7 if model_kind == "ssd300" else 1e-6)


@pytest.mark.skipif(not HAS_MPI, reason=MPI_REASON)
def test_mpiexec_minissd_train_rank_0_writes_and_resume_works(tmp_path):
    run = tmp_path / "run"
    command = [sys.executable, "-m", "minissd", "train", "--num-images", "8", "--batch-size", "4",
               "--iterations", "2", "--no-progress", "--no-val", "-o", str(run)]
    done = _mpiexec(command)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("training SSD(") == 1 and "on 2 processes" in done.stdout
    assert sorted(os.listdir(run)) == ["checkpoint.npz", "loss_curve.png", "model.npz", "train_log.csv"]
    done = _mpiexec([*command, "--resume", "--extend", "3"])
    assert done.returncode == 0, done.stderr
    _, meta = models.read_npz(run / "checkpoint.npz")
    assert meta["extra"]["iteration"] == 3 and meta["extra"]["run"]["processes"] == 2
    done = _mpiexec([*command[:-2], "--batch-size", "3", "-o", str(tmp_path / "odd")])
    assert done.returncode != 0 and "multiple of 2" in done.stderr


@pytest.mark.skipif(not HAS_MPI, reason=MPI_REASON)
def test_the_throughput_benchmark_times_every_setup_and_the_allreduce():
    """python -m minissd.bench distributed: three setups, each a real run; the allreduce timed only with K > 1."""
    from minissd.bench import distributed as bench_distributed

    lines = []
    rows = bench_distributed.run(["tiny"], [4], steps=1, processes=2, threads=1, log=lines.append)
    assert [(r["processes"], r["threads"]) for r in rows] == [(1, 1), (1, 1), (2, 1)]
    assert all(r["step_s"] > 0 and r["images_per_s"] == pytest.approx(4 / r["step_s"]) for r in rows)
    assert rows[0]["allreduce_s"] == 0.0 and rows[2]["allreduce_s"] > 0
    assert 0 < rows[2]["allreduce_share"] < 1 and rows[2]["gradient_mb"] > 0
    assert len(lines) == 4 and "2 processes x 1 thread" in lines[-1] and "%" in lines[-1]
