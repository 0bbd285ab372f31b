"""codegen/cache.py and the cached compile path of codegen/runtime.py: hits, misses,
invalidation, corrupt and truncated entries, atomic writes under concurrent
writers (threads and processes), PROPC_CACHE=0, the default location, and a warm
pc.compile in a new process. Every compiled result is checked against NumPy."""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

import codegen
from codegen.runtime import cache
from codegen.options import from_environment
from codegen.threads import host as parallel
from ir import Builder, DType, TensorType

from codegen_graphs import bcast, layer_graph, layer_reference

F32 = DType.f32
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    """A private, empty cache directory for one test."""
    directory = tmp_path / "cache"
    monkeypatch.setenv("PROPC_CACHE_DIR", str(directory))
    monkeypatch.delenv("PROPC_CACHE", raising=False)
    monkeypatch.delenv("PROPC_DEBUG", raising=False)
    return directory


def scaled_tanh_graph(scale: float = 2.0, rows: int = 5, cols: int = 7):
    """y = tanh(x * scale + v); s = sum over rows of y (no dot: no sgemm library)."""
    b = Builder("scaled")
    x = b.input(TensorType((rows, cols), F32))
    v = b.input(TensorType((cols,), F32))
    factor = bcast(b, b.constant(value=np.asarray(scale, np.float32)), (rows, cols), ())
    y = b.tanh(b.add(b.mul(x, factor), bcast(b, v, (rows, cols), (1,))))
    b.output(y, b.reduce_sum(y, axes=(0,)))
    return b.build()


def scaled_tanh_reference(x, v, scale=2.0):
    y = np.tanh(x * np.float32(scale) + v)
    return y, y.sum(axis=0)


def inputs(rows: int = 5, cols: int = 7):
    rng = np.random.default_rng(3)
    return (rng.standard_normal((rows, cols)).astype(np.float32),
            rng.standard_normal(cols).astype(np.float32))


def check_scaled(exe, scale=2.0, rows=5, cols=7):
    x, v = inputs(rows, cols)
    for got, want in zip(exe(x, v), scaled_tanh_reference(x, v, scale)):
        np.testing.assert_allclose(got, want, rtol=2e-6, atol=2e-6)


def entry_files(directory: Path) -> list[Path]:
    return sorted(directory.rglob(f"*{cache.SUFFIX}"))


def counts() -> dict:
    return dict(vars(cache.stats))


def delta(before: dict) -> dict:
    return {name: value - before[name] for name, value in vars(cache.stats).items()}


# -- hits, misses, invalidation --------------------------------------------------------


def test_second_compile_is_a_hit_with_the_same_results(cache_dir):
    before = counts()
    first = codegen.compile_graph(scaled_tanh_graph())
    second = codegen.compile_graph(scaled_tanh_graph())
    assert not first.from_cache and second.from_cache
    assert delta(before)["hits"] == 1 and delta(before)["stores"] == 1
    assert len(entry_files(cache_dir)) == 1
    check_scaled(first)
    check_scaled(second)
    assert second.memory.peak_scratch == first.memory.peak_scratch
    assert second.memory.slots == first.memory.slots
    assert second.llvm_ir == first.llvm_ir
    assert "propc.scaled" in second.asm


def test_changed_graph_misses_and_keeps_both_entries(cache_dir):
    codegen.compile_graph(scaled_tanh_graph(2.0))
    other = codegen.compile_graph(scaled_tanh_graph(3.0))      # only a constant differs
    bigger = codegen.compile_graph(scaled_tanh_graph(2.0, rows=6))
    assert not other.from_cache and not bigger.from_cache
    check_scaled(other, 3.0)
    check_scaled(bigger, 2.0, rows=6)
    assert len(entry_files(cache_dir)) == 3
    assert codegen.compile_graph(scaled_tanh_graph(3.0)).from_cache


def test_options_and_compiler_fingerprint_are_part_of_the_key(cache_dir, monkeypatch):
    codegen.compile_graph(scaled_tanh_graph())
    checked = codegen.compile_graph(scaled_tanh_graph(), debug=True)
    assert not checked.from_cache and checked.memory.error_slot is not None
    check_scaled(checked)
    threads = parallel.thread_count(from_environment())
    monkeypatch.setattr(parallel, "thread_count", lambda options: threads + 1)
    assert not codegen.compile_graph(scaled_tanh_graph()).from_cache
    monkeypatch.setattr(parallel, "thread_count", lambda options: threads)
    assert codegen.compile_graph(scaled_tanh_graph()).from_cache
    for switch in "sgemm", "sgemm_conv", "mathlib", "epilogues":
        options = dataclasses.replace(from_environment(), **{switch: False})
        assert not codegen.compile_graph(scaled_tanh_graph(), options=options).from_cache, switch
    assert codegen.compile_graph(scaled_tanh_graph(), options=from_environment()).from_cache
    with pytest.raises(ValueError, match="compiles for this machine"):
        codegen.compile_graph(scaled_tanh_graph(),
                              options=dataclasses.replace(from_environment(), cpu="x86-64"))
    # a new compiler (edited source, other llvmlite, other CPU) never sees old code
    monkeypatch.setattr(cache, "compiler_fingerprint", lambda: "another compiler")
    fresh = codegen.compile_graph(scaled_tanh_graph())
    assert not fresh.from_cache
    check_scaled(fresh)


def test_source_stamp_changes_when_a_compiler_file_changes(tmp_path, monkeypatch):
    package = tmp_path / "codegen_copy"
    package.mkdir()
    source = package / "module.py"
    source.write_text("x = 1\n")
    monkeypatch.setattr(cache, "__file__", str(package / "cache.py"))
    cache.source_digest.cache_clear()
    try:
        first = cache.source_digest()
        cache.source_digest.cache_clear()
        assert cache.source_digest() == first
        source.write_text("x = 22\n")
        cache.source_digest.cache_clear()
        assert cache.source_digest() != first
    finally:
        monkeypatch.undo()
        cache.source_digest.cache_clear()


# -- damaged entries ----------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty", "garbage"])
def test_damaged_entry_is_detected_and_rebuilt(cache_dir, damage):
    codegen.compile_graph(scaled_tanh_graph())
    (path,) = entry_files(cache_dir)
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0x40
    elif damage == "truncate":
        data = data[:len(data) * 2 // 3]
    elif damage == "empty":
        data = bytearray()
    else:
        data = bytearray(b"not a propc cache entry at all" * 10)
    path.write_bytes(bytes(data))
    before = counts()
    rebuilt = codegen.compile_graph(scaled_tanh_graph())
    assert not rebuilt.from_cache
    assert delta(before)["rejected"] == 1 and delta(before)["stores"] == 1
    check_scaled(rebuilt)
    assert cache.decode(path.read_bytes()) is not None          # replaced by a good one
    assert codegen.compile_graph(scaled_tanh_graph()).from_cache


def test_encode_decode_round_trip_and_length_checks():
    entry = cache.CacheEntry({"a": [1, 2]}, b"\x7fELF object", cache.compress_ir("define"))
    data = cache.encode(entry)
    back = cache.decode(data)
    assert back.meta == {"a": [1, 2]} and back.object_code == b"\x7fELF object"
    assert back.llvm_ir() == "define"
    for cut in range(len(data)):
        assert cache.decode(data[:cut]) is None
    assert cache.decode(data + b"x") is None


# -- concurrency -------------------------------------------------------------------------


def test_threads_writing_one_entry_never_expose_a_partial_file(cache_dir):
    """Writers replace the same entry with entries of different sizes while readers
    load it: every load is a whole, valid entry."""
    key = "f" * 64
    entries = [cache.CacheEntry({"writer": n}, bytes([n + 1]) * (5000 + 3000 * n))
               for n in range(3)]
    cache.store(key, entries[0], cache_dir)
    failures: list[str] = []
    stop = threading.Event()

    def write(entry):
        for _ in range(150):
            cache.store(key, entry, cache_dir)

    def read():
        while not stop.is_set():
            found = cache.load(key, cache_dir)
            if found is None:
                failures.append("invalid or missing entry")
                return
            expected = entries[found.meta["writer"]].object_code
            if found.object_code != expected:
                failures.append("mixed contents")
                return

    readers = [threading.Thread(target=read) for _ in range(2)]
    writers = [threading.Thread(target=write, args=(entry,)) for entry in entries]
    for thread in readers + writers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    for thread in readers:
        thread.join()
    assert failures == []
    assert [p.name for p in cache_dir.rglob("*") if p.is_file()] == [f"{key}{cache.SUFFIX}"]


CHILD = textwrap.dedent("""
    import json, sys
    import numpy as np
    import codegen
    from codegen.options import from_environment
    from codegen.runtime import cache
    from codegen.threads import host as parallel
    sys.path.insert(0, sys.argv[1])
    from test_cache import scaled_tanh_graph, check_scaled
    exe = codegen.compile_graph(scaled_tanh_graph())
    check_scaled(exe)
    # hammer the entry: store it again and load it, many times, in every process
    key = cache.cache_key("graphs", [str(scaled_tanh_graph()), ""],
                          codegen.runtime.executable.compile_options(None))
    directory = from_environment().cache_dir
    entry = cache.load(key, directory)
    bad = 0
    for _ in range(60):
        cache.store(key, entry, directory)
        found = cache.load(key, directory)
        bad += found is None or found.object_code != entry.object_code
    print(json.dumps({"from_cache": exe.from_cache, "bad": bad,
                      "rejected": cache.stats.rejected}))
""")


def run_children(count: int, env: dict) -> list[dict]:
    here = str(Path(__file__).parent)
    children = [subprocess.Popen([sys.executable, "-c", CHILD, here], env=env, cwd=ROOT,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for _ in range(count)]
    results = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def test_processes_compiling_the_same_graph_at_once(cache_dir):
    env = dict(os.environ, PROPC_CACHE_DIR=str(cache_dir))
    results = run_children(3, env)
    assert all(r["bad"] == 0 and r["rejected"] == 0 for r in results), results
    (path,) = entry_files(cache_dir)
    assert cache.decode(path.read_bytes()) is not None
    assert not [p for p in path.parent.iterdir() if p.suffix == ".tmp"]
    (late,) = run_children(1, env)
    assert late["from_cache"] and late["bad"] == 0


# -- switches and locations ---------------------------------------------------------------


def test_propc_cache_0_reads_and_writes_nothing(cache_dir, monkeypatch):
    monkeypatch.setenv("PROPC_CACHE", "0")
    assert from_environment().cache_dir is None
    before = counts()
    first = codegen.compile_graph(scaled_tanh_graph())
    second = codegen.compile_graph(scaled_tanh_graph())
    assert not first.from_cache and not second.from_cache
    check_scaled(second)
    assert not cache_dir.exists()
    assert delta(before) == {name: 0 for name in before}


def test_default_location_follows_xdg_and_home(tmp_path, monkeypatch):
    monkeypatch.delenv("PROPC_CACHE", raising=False)
    monkeypatch.delenv("PROPC_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert from_environment().cache_dir == tmp_path / "xdg" / "propc"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert from_environment().cache_dir == tmp_path / "home" / ".cache" / "propc"
    monkeypatch.setenv("PROPC_CACHE_DIR", str(tmp_path / "mine"))
    assert from_environment().cache_dir == tmp_path / "mine"


def test_unwritable_cache_still_compiles(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("PROPC_CACHE_DIR", str(blocker / "cache"))
    monkeypatch.delenv("PROPC_CACHE", raising=False)
    before = counts()
    exe = codegen.compile_graph(scaled_tanh_graph())
    check_scaled(exe)
    assert delta(before)["store_failures"] == 1


def test_dot_graphs_come_back_from_the_cache(cache_dir):
    graph = layer_graph(16, 40, 24)
    rng = np.random.default_rng(0)
    x, w, bias = (rng.standard_normal(v.type.shape).astype(np.float32) for v in graph.inputs)
    codegen.compile_graph(graph)
    again = codegen.compile_graph(graph)
    assert again.from_cache
    for got, want in zip(again(x, w, bias), layer_reference(x, w, bias)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


WARM_CHILD = textwrap.dedent("""
    import json, time
    import numpy as np
    import propc as pc
    from codegen.options import from_environment
    from codegen.runtime import cache
    from codegen.threads import host as parallel

    def model(w, x):
        return pc.tanh(x @ w).sum(axis=1)

    rng = np.random.default_rng(0)
    w = rng.standard_normal((6, 4)).astype(np.float32)
    x = rng.standard_normal((3, 6)).astype(np.float32)
    fn = pc.compile(model)
    got = fn(w, x)
    lowered = fn.lower(w, x)
    libraries = [cache.entry_path(cache.cache_key(f"library:{name}", [], {}),
                                  from_environment().cache_dir)
                 for name in ("sgemm", "sgemm-serial")]   # with / without libgomp
    print(json.dumps({"hits": cache.stats.hits,
                      "library": any(path.exists() for path in libraries),
                      "got": got.tolist(),
                      "want": np.tanh(x @ w).sum(axis=1).tolist(),
                      "graph_ops": len(lowered.graph.ops), "ir": "propc.model" in lowered.llvm_ir,
                      "from_cache": lowered.executable.from_cache}))
""")


def test_pc_compile_in_a_new_process_loads_from_disk(cache_dir, tmp_path):
    """The second process loads the sgemm library and the traced graph's code."""
    script = tmp_path / "warm_child.py"
    script.write_text(WARM_CHILD)
    env = dict(os.environ, PROPC_CACHE_DIR=str(cache_dir))
    runs = []
    for _ in range(2):
        done = subprocess.run([sys.executable, str(script)], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    cold, warm = runs
    assert not cold["from_cache"] and cold["hits"] == 0 and cold["library"]
    assert warm["from_cache"] and warm["hits"] == 2          # the graph and the sgemm
    for run in runs:
        np.testing.assert_allclose(run["got"], run["want"], rtol=1e-5, atol=1e-5)
        assert run["ir"]
    assert warm["graph_ops"] == cold["graph_ops"] > 0      # simplified on demand
