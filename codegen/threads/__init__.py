"""Threads for generated code, behind a small interface.

The rest of codegen imports only these three modules of the package (checked by
tests/test_layering.py):
- `host`: a compile's `thread_plan(options)` (codegen/plan/threads.py: the thread
  count, PROPC_NUM_THREADS via the CompileOptions, else the usable cores; whether
  libgomp's idle threads spin; whether calls hold the pool), libgomp loading,
  `split_range` and the `PARALLEL` region symbol with its body type;
- `library`: the process-wide library compiled once per process (the sgemm, the
  region function, the pool's `team`): `shared_sgemm(module, symbol)` declares one
  of its symbols in a graph module (types in LIBRARY_TYPES; nothing is loaded),
  `load_library(cache_dir)` loads it (the compile edge does, when a module calls it),
  `define_exported_library` puts a libgomp-only copy into an exported module;
- `sgemm`: the threaded sgemm (one product split over a team) and the workspace
  sizes it needs.
Internal: `region` (a parallel region on libgomp teams, with the back-off and serial
fallbacks when threads lose their cores) and `pool` (the spinning worker pool a
compiled call holds, futex sleeps between calls). Measured against libgomp with
spinning threads (issue 15), the pool stayed: see docs/ARCHITECTURE.md.
"""
