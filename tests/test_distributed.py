"""The data-parallel gradient average (fastddgan.train.distributed) over two gloo processes: it averages (a sum
would double every update), keeps parameters without a gradient on any process out of Adam's step, counts a
gradient missing on one process as zeros there, and splits the gradients into buckets per size and dtype; and the
models call it between backward and the step."""

import json
import os
import subprocess
import sys

import torch

from fastddgan.ddgan import DDGAN
from fastddgan.ddpm import DDPM
from fastddgan.models import build

WORKER = r"""
import json, sys
import torch
import torch.distributed as dist
from fastddgan.train import distributed

rank = int(sys.argv[1])
dist.init_process_group("gloo", init_method="file://" + sys.argv[2], rank=rank, world_size=2)
a, b, c, d = (torch.nn.Parameter(torch.zeros(shape, dtype=dtype))
              for shape, dtype in (((3, 4), torch.float32), ((5,), torch.float32), ((2,), torch.float32),
                                   ((7,), torch.float64)))
a.grad = torch.full((3, 4), float(rank + 1))                      # 1 and 2: mean 1.5 (sum 3)
b.grad = torch.arange(5.0) if rank == 0 else None                 # on one process only: half of it
d.grad = torch.full((7,), 10.0 * (rank + 1), dtype=torch.float64)  # another dtype, its own bucket: 15
opt = torch.optim.Adam([a, b, c, d], lr=0.1)                      # c: no gradient on any process
distributed.gradient_sync(2, bucket_bytes=40)(opt)                # 40 bytes: a (48 bytes) and b in buckets alone
grads = {"a": a.grad.tolist(), "b": b.grad.tolist(), "c": c.grad is None, "d": d.grad.tolist()}
opt.step()
print(json.dumps({"grads": grads, "c_state": len(opt.state[c]), "c": c.tolist(), "a": a.tolist()}))
dist.destroy_process_group()
"""


def test_two_processes_average_their_gradients(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(rank), str(tmp_path / "store")], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for rank in range(2)]
    outs = [proc.communicate(timeout=120) for proc in procs]
    for proc, (out, err) in zip(procs, outs):
        assert proc.returncode == 0, err[-2000:]
    results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
    assert results[0] == results[1]  # every process holds the same gradients and takes the same step
    grads = results[0]["grads"]
    assert grads["a"] == [[1.5] * 4] * 3  # the mean over the processes, not the sum (3.0)
    assert grads["b"] == [0.0, 0.5, 1.0, 1.5, 2.0]  # missing on one process: zeros there
    assert grads["c"] is True and results[0]["c_state"] == 0 and results[0]["c"] == [0.0, 0.0]  # Adam skips it
    assert grads["d"] == [15.0] * 7
    torch.testing.assert_close(torch.tensor(results[0]["a"]), torch.full((3, 4), -0.1))  # Adam: -lr sign(g)


class Recorder:
    """A gradient_sync that records, per call, the optimiser and the gradients it was given."""

    def __init__(self):
        self.calls = []

    def __call__(self, optimizer):
        grads = [p.grad for group in optimizer.param_groups for p in group["params"]]
        assert any(g is not None for g in grads)  # after backward, before the step
        self.calls.append(optimizer)


def test_models_call_the_gradient_sync_between_backward_and_each_step():
    torch.manual_seed(0)
    x0 = torch.rand(4, 1, 28, 28) * 2 - 1
    ddgan = DDGAN(build("tiny", "generator"), build("tiny", "discriminator"), 4, sample_shape=(1, 28, 28),
                  loss="wasserstein", loss_options={"n_critic": 2})
    ddgan.gradient_sync = Recorder()
    ddgan.train_step(x0)
    assert ddgan.gradient_sync.calls == [ddgan.opt_d, ddgan.opt_d, ddgan.opt_g]
    ddpm = DDPM(build("tiny", "denoiser"), 50, sample_shape=(1, 28, 28))
    ddpm.gradient_sync = Recorder()
    ddpm.train_step(x0)
    assert ddpm.gradient_sync.calls == [ddpm.optimizer]
