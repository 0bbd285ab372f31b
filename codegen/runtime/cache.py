"""The on-disk compile cache: native object code of compiled modules, by key.

Where: `$PROPC_CACHE_DIR`, else `$XDG_CACHE_HOME/propc`, else `~/.cache/propc`.
`PROPC_CACHE=0` switches the disk cache off (nothing is read or written).

What a key covers (`cache_key`): the text the code is compiled from (the graphs'
text, or a traced graph's text from which the compiler derives the rest), the
compile options (debug checks, codegen switches, thread count), and
`compiler_fingerprint()`: llvmlite and LLVM versions, the host triple, CPU name and
CPU features, and a stamp of the compiler's own source files (the `ir` and
`codegen` packages: paths, sizes, modification times), so editing the compiler,
upgrading llvmlite or moving the cache to another CPU never loads stale code.
(Same idea as the index key of Numba's cache, numba/core/caching.py: source stamp
+ target + versions.) Entries are never evicted: delete the directory to reclaim it.

An entry is one file: a magic line, the SHA-256 of the body, then the body
(four lengths, the entry's own key, JSON metadata, object code, zlib-compressed
LLVM IR). A corrupt or truncated file fails the checksum and is treated as a miss
(the rebuilt entry replaces it); so is a valid entry found under another key's
file name (copied or renamed by hand: its code is for another graph). Writers write a private temporary file in the same directory and
`os.replace` it into place, so concurrent processes writing the same entry never
expose a half-written file: readers see the old file, the new one, or none. The
temporary files of writers killed before the rename are removed by the first
store of a later process, once they are an hour old.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import struct
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import llvmlite
import llvmlite.binding as llvm

from ..forksafe import ForkSafeLock
from ..llvm_init import initialise

log = logging.getLogger("propc.cache")

FORMAT = "v2"  # v2: the key is inside the checksummed body
MAGIC = b"PROPC-CACHE-" + FORMAT.encode() + b"\n"
_HEADER = struct.Struct("<QQQQ")
_DIGEST_BYTES = 32
SUFFIX = ".entry"


@dataclass
class CacheStats:
    """What this process did with the disk cache (tests and `propc bench` read it)."""

    hits: int = 0
    misses: int = 0
    stores: int = 0
    rejected: int = 0      # entries found but corrupt, truncated or unreadable
    store_failures: int = 0


stats = CacheStats()
_STATS_LOCK = ForkSafeLock()


def _count(name: str) -> None:
    with _STATS_LOCK:
        setattr(stats, name, getattr(stats, name) + 1)


@dataclass
class CacheEntry:
    """One cached module: metadata (JSON values), object code, optimised LLVM IR."""

    meta: dict
    object_code: bytes
    llvm_ir_compressed: bytes = b""

    def llvm_ir(self) -> str:
        """The optimised LLVM IR text ("" when it was not stored)."""
        if not self.llvm_ir_compressed:
            return ""
        return zlib.decompress(self.llvm_ir_compressed).decode()


@functools.lru_cache(maxsize=None)
def source_digest() -> str:
    """SHA-256 over the compiler's source files (packages `ir` and `codegen`): each
    file's path, size and modification time, so any edit of the compiler (or a new
    install of it) gives new keys. Stat, not read: it is paid by every warm start."""
    import ir
    digest = hashlib.sha256()
    codegen_root = os.path.dirname(os.path.dirname(__file__))  # codegen/, not runtime/
    for package in (os.path.dirname(ir.__file__), codegen_root):
        for path, size, mtime in sorted(_python_files(package)):
            digest.update(f"{path}\0{size}\0{mtime}\n".encode())
    return digest.hexdigest()


def _python_files(directory: str) -> list[tuple[str, int, int]]:
    """(path, size, mtime_ns) of the .py files under `directory` (os.scandir: a
    quarter of the time of Path.rglob, and this runs at every warm start)."""
    found = []
    with os.scandir(directory) as entries:
        for entry in entries:
            if entry.is_dir() and not entry.name.startswith((".", "__")):
                found += _python_files(entry.path)
            elif entry.name.endswith(".py") and entry.is_file():
                info = entry.stat()
                found.append((entry.path, info.st_size, info.st_mtime_ns))
    return found


@functools.lru_cache(maxsize=None)
def compiler_fingerprint() -> str:
    """Everything outside the compiled text that changes the machine code."""
    initialise()
    parts = [FORMAT, f"llvmlite {llvmlite.__version__}",
             f"llvm {'.'.join(map(str, llvm.llvm_version_info))}",
             llvm.get_default_triple(), llvm.get_host_cpu_name(),
             llvm.get_host_cpu_features().flatten(),
             f"python {sys.version_info[0]}.{sys.version_info[1]}", source_digest()]
    return "\n".join(parts)


def cache_key(kind: str, texts: list[str], options: dict) -> str:
    """Hex SHA-256 naming one entry: its kind, source texts and compile options."""
    digest = hashlib.sha256()
    digest.update(compiler_fingerprint().encode())
    digest.update(b"\0" + kind.encode() + b"\0")
    digest.update(json.dumps(options, sort_keys=True).encode())
    for text in texts:
        digest.update(b"\0%d\0" % len(text))
        digest.update(text.encode())
    return digest.hexdigest()


def entry_path(key: str, directory: Path | None) -> Path | None:
    """Where the entry `key` lives in the cache `directory` (a compile's
    `CompileOptions.cache_dir`; None: the disk cache is off)."""
    return None if directory is None else directory / FORMAT / f"{key}{SUFFIX}"


def load(key: str, directory: Path | None) -> CacheEntry | None:
    """The entry stored under `key` in `directory`, or None (disabled, absent or
    invalid)."""
    path = entry_path(key, directory)
    if path is None:
        return None
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        _count("misses")
        return None
    except OSError as err:
        _warn_unusable("read", path, err)
        _count("rejected")
        return None
    entry = decode(data, key)
    if entry is None:
        log.warning("propc cache: %s is corrupt, truncated or stored under another key; "
                    "it will be rebuilt", path)
        _count("rejected")
        return None
    _count("hits")
    return entry


def store(key: str, entry: CacheEntry, directory: Path | None) -> bool:
    """Write `entry` under `key` in `directory` atomically; False (and a log line)
    when it cannot (or the disk cache is off)."""
    path = entry_path(key, directory)
    if path is None:
        return False
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_temporaries(path.parent)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{key[:16]}.",
                                             suffix=".tmp")
        with os.fdopen(handle, "wb") as stream:
            stream.write(encode(entry, key))
        os.replace(temporary, path)
        temporary = None
    except OSError as err:
        _warn_unusable("write", path, err)
        _count("store_failures")
        return False
    finally:
        if temporary is not None:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
    _count("stores")
    return True


_WARNED: set[Path] = set()


def _warn_unusable(action: str, path: Path, err: OSError) -> None:
    """Say once per directory that the cache cannot be used there, with what to do
    about it; later failures only at debug level (a read-only or full cache
    directory used to warn on every compile)."""
    if path.parent in _WARNED:
        log.debug("propc cache: cannot %s %s: %s", action, path, err)
        return
    _WARNED.add(path.parent)
    log.warning("propc cache: cannot %s %s: %s; compiling without the disk cache there "
                "(set PROPC_CACHE_DIR to a writable directory, or PROPC_CACHE=0 to switch "
                "the disk cache off)", action, path, err)


STALE_TEMPORARY_SECONDS = 3600  # a writer holds its temporary file for milliseconds
_SWEPT: set[Path] = set()


def _remove_stale_temporaries(directory: Path) -> None:
    """Delete the temporary files of writers that died between writing and renaming
    (killed processes), once per directory per process: those older than
    STALE_TEMPORARY_SECONDS, so a live writer's file is never touched."""
    if directory in _SWEPT:
        return
    _SWEPT.add(directory)
    limit = time.time() - STALE_TEMPORARY_SECONDS
    with contextlib.suppress(OSError), os.scandir(directory) as entries:
        for entry in entries:
            if entry.name.startswith(".") and entry.name.endswith(".tmp"):
                with contextlib.suppress(OSError):
                    if entry.stat().st_mtime < limit:
                        os.unlink(entry.path)
                        log.info("propc cache: removed stale temporary file %s", entry.path)


def encode(entry: CacheEntry, key: str = "") -> bytes:
    """The bytes of the entry file of `key`: magic, checksum of the body, body."""
    meta = json.dumps(entry.meta, sort_keys=True).encode()
    stamp = key.encode()
    body = (_HEADER.pack(len(stamp), len(meta), len(entry.object_code),
                         len(entry.llvm_ir_compressed))
            + stamp + meta + entry.object_code + entry.llvm_ir_compressed)
    return MAGIC + hashlib.sha256(body).digest() + body


def decode(data: bytes, key: str | None = None) -> CacheEntry | None:
    """Parse an entry file; None unless magic, checksum and lengths all agree and,
    when `key` is given, the entry was stored under that key."""
    start = len(MAGIC) + _DIGEST_BYTES
    if len(data) < start + _HEADER.size or not data.startswith(MAGIC):
        return None
    body = data[start:]
    if hashlib.sha256(body).digest() != data[len(MAGIC):start]:
        return None
    key_len, meta_len, object_len, ir_len = _HEADER.unpack_from(body)
    if _HEADER.size + key_len + meta_len + object_len + ir_len != len(body):
        return None
    position = _HEADER.size + key_len
    if key is not None and body[_HEADER.size:position] != key.encode():
        return None
    try:
        decoded = json.loads(body[position:position + meta_len])
    except ValueError:
        return None
    position += meta_len
    object_code = body[position:position + object_len]
    compressed = body[position + object_len:]
    if not isinstance(decoded, dict) or not object_code:
        return None
    return CacheEntry(decoded, object_code, compressed)


def compress_ir(text: str) -> bytes:
    """LLVM IR text compressed for an entry (fast level: it is only read on demand)."""
    return zlib.compress(text.encode(), 1)
