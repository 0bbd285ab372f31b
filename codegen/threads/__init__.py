"""Threads for generated code, behind a small interface.

The rest of codegen uses only: `host` (thread_count, load_gomp, regions_are_cheap,
pool_in_use, split_range, PARALLEL and its body type), `library.shared_sgemm` /
`library.load_library` (declare and load the process-wide functions) and
`pool.TEAM` (the symbol an entry point calls around a graph with regions).
region.py (libgomp regions with preemption fallbacks) and pool.py (the pool of
spinning workers of one compiled call, futex sleeps) are internal: nothing outside
this package imports them except library.py.
"""
