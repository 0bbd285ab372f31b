"""Threads for generated code, behind a small interface.

The rest of codegen imports only these three modules of the package (checked by
tests/test_layering.py):
- `host`: the thread count (PROPC_NUM_THREADS via codegen/options.py, else the usable
  cores), libgomp loading, `regions_are_cheap` / `pool_in_use` (which work gets
  threads), `split_range` and the `PARALLEL` region symbol with its body type;
- `library`: the process-wide library compiled once per process (the sgemm, the
  region function, the pool's `team`): `shared_sgemm(module, symbol)` declares one
  of its symbols in a graph module, `load_library` loads it,
  `define_exported_library` puts a libgomp-only copy into an exported module;
- `sgemm`: the threaded sgemm (one product split over a team) and the workspace
  sizes it needs.
Internal: `region` (a parallel region on libgomp teams, with the back-off and serial
fallbacks when threads lose their cores) and `pool` (the spinning worker pool a
compiled call holds, futex sleeps between calls). Measured against libgomp with
spinning threads (issue 15), the pool stayed: see docs/ARCHITECTURE.md.
"""
