"""The flat gradient buffers (propc/distributed/flat.py) and importing without MPI."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import propc as pc
from propc.distributed import DistributedError, flat

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def params():
    rng = np.random.default_rng(0)
    return {"a": rng.standard_normal((3, 2)).astype(np.float32),
            "b": [rng.standard_normal(4), rng.standard_normal(()).astype(np.float32)]}


def test_layout_groups_leaves_by_dtype_with_the_loss_last_in_float32():
    layout = flat.layout_for(params())
    assert layout.dtypes == (np.dtype(np.float32), np.dtype(np.float64))
    assert layout.sizes == (6 + 1 + 1, 4)  # a, b[1], the loss | b[0]
    assert [(s.buffer, s.offset, s.shape) for s in layout.slots] == [
        (0, 0, (3, 2)), (1, 0, (4,)), (0, 6, ())]
    assert (layout.loss_slot.buffer, layout.loss_slot.offset) == (0, 7)
    assert layout.nbytes == 8 * 4 + 4 * 8


@pytest.mark.parametrize("run", [pc.interpret, pc.compile])
def test_pack_then_unpack_gives_the_leaves_divided_by_the_rank_count(run):
    tree = params()
    layout = flat.layout_for(tree)
    loss = np.float32(2.5)
    buffers = run(lambda t, l: flat.pack(layout, l, t))(tree, loss)
    expected0 = np.concatenate([tree["a"].ravel(), [tree["b"][1]], [loss]]).astype(np.float32)
    np.testing.assert_array_equal(buffers[0], expected0)
    np.testing.assert_array_equal(buffers[1], tree["b"][0])
    assert flat.loss_of(layout, buffers) == loss
    back = run(lambda t, bufs: flat.unpack(layout, bufs, t, 4))(tree, buffers)
    np.testing.assert_array_equal(back["a"], tree["a"] / np.float32(4))
    np.testing.assert_array_equal(back["b"][0], tree["b"][0] / 4)
    assert back["b"][0].dtype == np.float64 and back["b"][1].shape == ()


def test_integer_parameters_are_rejected_by_name():
    with pytest.raises(DistributedError, match=r"params\['n'\] is int32"):
        flat.layout_for({"n": np.zeros(3, np.int32), "w": np.zeros(2, np.float32)})


def test_buckets_cover_the_buffer_in_pieces_of_at_most_the_bucket_size():
    assert flat.buckets(10, 4, 16) == [(0, 4), (4, 8), (8, 10)]
    assert flat.buckets(3, 8, 1 << 20) == [(0, 3)]


def test_propc_and_propc_distributed_import_without_mpi4py_and_the_demo_says_why():
    script = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'mpi4py':\n"
        "            raise ImportError('blocked: no mpi4py')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import propc, propc.distributed as dist\n"
        "try:\n"
        "    dist.world()\n"
        "except dist.MPIUnavailable as err:\n"
        "    print('unavailable:', err)\n"
        "import propc.demo\n"
        "print('demo exit status', propc.demo.main(['--data-parallel', '--quick']))\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "unavailable: propc.distributed needs mpi4py: pip install 'propc[mpi]'" in done.stdout
    assert "demo exit status 2" in done.stdout
    assert "propc demo: --data-parallel: propc.distributed needs mpi4py" in done.stderr
