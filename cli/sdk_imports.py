"""Import the Pulumi SDKs' generated modules with postponed annotations (PEP 563).

Why: pulumi-aws and pulumi-kubernetes define thousands of classes whose annotations
(`Optional[pulumi.Input[Sequence[...]]]`) Python evaluates as each module is imported:
about 40 000 `typing` calls, over half of a cold offline render. The SDK reads those
annotations only through `typing.get_type_hints`, which evaluates strings the same way, and
only for the classes a program uses. So this loader compiles the SDK packages as if each
module began with `from __future__ import annotations`: the annotations stay strings until
the SDK asks for them. `tests/test_sdk_imports.py` checks that every type the SDK resolves
is the same either way, and that a render is byte-identical.

Compiled code is cached in the kit's own folder (`$XDG_CACHE_HOME/webstack/sdk-bytecode`,
default `~/.cache/webstack/...`), never beside the SDK's own bytecode, and is keyed like a
`.pyc`: interpreter magic number, source mtime and size. Compiling without a cache is slower
than a plain import, so when that folder cannot be written the loader is not installed.

Only `python -m cli` installs it. The program `pulumi up` runs imports the SDKs as usual.
"""

from __future__ import annotations

import __future__
import contextlib
import gc
import hashlib
import importlib.machinery
import importlib.util
import marshal
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from types import CodeType, ModuleType
from typing import NoReturn

SDK_PACKAGES = ("pulumi_aws", "pulumi_kubernetes")
# Part of every cache header: bump it when the way code is compiled here changes.
_FORMAT = b"W563"


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "webstack" / "sdk-bytecode" / sys.implementation.cache_tag


class _PostponedAnnotationsLoader(importlib.machinery.SourceFileLoader):
    """A source loader that compiles with PEP 563 and caches the result in `cache_dir`."""

    def __init__(self, fullname: str, path: str, cache_dir: Path) -> None:
        super().__init__(fullname, path)
        self.cache_dir = cache_dir

    def get_code(self, fullname: str) -> CodeType:
        source_path = self.get_filename(fullname)
        stat = os.stat(source_path)
        header = (importlib.util.MAGIC_NUMBER + _FORMAT
                  + (int(stat.st_mtime) & 0xFFFFFFFF).to_bytes(4, "little")
                  + (stat.st_size & 0xFFFFFFFF).to_bytes(4, "little"))
        cached = self.cache_dir / (hashlib.sha256(os.fsencode(source_path)).hexdigest()[:40] + ".pyc")
        try:
            data = cached.read_bytes()
        except OSError:
            data = b""
        if data[:len(header)] == header:
            try:
                return marshal.loads(memoryview(data)[len(header):])
            except (EOFError, ValueError, TypeError):
                pass  # a damaged file: compile again and overwrite it
        code = compile(self.get_data(source_path), source_path, "exec",
                       flags=__future__.annotations.compiler_flag, dont_inherit=True)
        _write_atomically(cached, header + marshal.dumps(code))
        return code


def _write_atomically(path: Path, data: bytes) -> None:
    """Parallel renders may compile the same module: each writes a whole file, then renames."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    except OSError:
        return  # the next import compiles again; correctness does not depend on the cache
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)  # a full disk must not fill up further with half-written files


class _SdkFinder:
    """Finds SDK modules as usual and swaps in the postponed-annotations loader."""

    def __init__(self, packages: Sequence[str], cache_dir: Path) -> None:
        self.packages = tuple(packages)
        self.cache_dir = cache_dir

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname.partition(".")[0] not in self.packages:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and type(spec.loader) is importlib.machinery.SourceFileLoader:
            spec.loader = _PostponedAnnotationsLoader(fullname, spec.origin, self.cache_dir)
        return spec


def install(packages: Sequence[str] = SDK_PACKAGES, cache_dir: Path | None = None) -> bool:
    """Routes later imports of `packages` through the loader; False when it stays off."""
    cache_dir = cache_dir or default_cache_dir()
    if any(isinstance(f, _SdkFinder) for f in sys.meta_path):
        return True
    try:
        cache_dir.mkdir(parents=True, exist_ok=True, mode=0o700)  # code that will run: yours only
        if not os.access(cache_dir, os.W_OK | os.X_OK):
            return False
    except OSError:
        return False
    sys.meta_path.insert(0, _SdkFinder(packages, cache_dir))
    return True


def run_as_render_process(main: Callable[[], int]) -> NoReturn:
    """Runs `main` the way `python -m cli` runs a render, and exits with its status:
    - the cyclic collector every 200 000 allocations instead of 700 (as mypy does): importing the
      SDKs creates some 200 000 objects that live until exit, and the default collector spent
      15-25% of a render examining them; all six stacks in one process use 8 MB more;
    - the SDKs imported through this module's loader (install(), before anything imports them);
    - no interpreter teardown: freeing the SDKs' ~1 300 modules one object at a time takes
      0.6-1 s after the work is done. Every file is written and closed by then, and nothing
      registered at exit has work left, so the streams are flushed and the process leaves."""
    gc.set_threshold(200_000, 30, 30)
    install()
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
