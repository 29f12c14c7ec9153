"""The render's SDK loader (cli/sdk_imports.py): faster imports, the same types, a sound cache."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import typing

import pytest

from cli import sdk_imports
from cli.render import ROOT

FAKE_SDK = '''\
import typing

VALUE = 1


def scale(x: typing.Optional[int], factor: "Later") -> typing.List[int]:
    return []


class Later:
    size: typing.Dict[str, int]
'''


def _run_dump(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(ROOT / "tests" / "sdk_types_dump.py"), *args],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_the_sdk_resolves_every_type_the_same_with_postponed_annotations(tmp_path):
    """The one thing the loader changes is when annotations are evaluated, never to what."""
    runs = {"plain": _run_dump(), "postponed": _run_dump("--postponed", str(tmp_path / "cache"))}
    dumps = {}
    for mode, proc in runs.items():
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"{mode}: {err[-3000:]}"
        dumps[mode] = json.loads(out)
    plain, postponed = dumps["plain"], dumps["postponed"]

    assert plain["annotation_kind"] != "str" and postponed["annotation_kind"] == "str", \
        "the postponed run really loaded the SDK through the loader"
    assert plain["modules"] == postponed["modules"]
    assert len(plain["classes"]) > 4000, "every input, output and resource class of the loaded modules"
    assert sorted(plain["classes"]) == sorted(postponed["classes"])
    differ = [name for name, answers in plain["classes"].items() if postponed["classes"][name] != answers]
    assert not differ, f"types resolve differently for {differ[:10]}"


@pytest.fixture
def fake_sdk(tmp_path, monkeypatch):
    """A package `fakesdk` on sys.path, the loader installed for it, all undone afterwards."""
    (tmp_path / "src" / "fakesdk").mkdir(parents=True)
    source = tmp_path / "src" / "fakesdk" / "__init__.py"
    source.write_text(FAKE_SDK)
    (tmp_path / "src" / "plainmod.py").write_text(FAKE_SDK)
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    cache = tmp_path / "cache"
    assert sdk_imports.install(packages=("fakesdk",), cache_dir=cache)

    def fresh_import(name: str = "fakesdk"):
        sys.modules.pop(name, None)
        importlib.invalidate_caches()
        return importlib.import_module(name)

    yield source, cache, fresh_import
    sys.modules.pop("fakesdk", None)
    sys.modules.pop("plainmod", None)


def test_annotations_stay_strings_until_asked_for_and_then_resolve(fake_sdk):
    _, _, fresh_import = fake_sdk
    mod = fresh_import()
    assert mod.scale.__annotations__ == {"x": "typing.Optional[int]", "factor": "'Later'",
                                         "return": "typing.List[int]"}
    assert typing.get_type_hints(mod.scale) == {"x": typing.Optional[int], "factor": mod.Later,
                                                "return": typing.List[int]}
    assert typing.get_type_hints(mod.Later) == {"size": typing.Dict[str, int]}


def test_modules_outside_the_sdk_packages_import_as_usual(fake_sdk):
    _, _, fresh_import = fake_sdk
    plain = fresh_import("plainmod")
    assert plain.scale.__annotations__["x"] == typing.Optional[int]


def test_compiled_code_is_reused_only_while_the_source_is_unchanged(fake_sdk):
    source, cache, fresh_import = fake_sdk
    fresh_import()
    assert len(list(cache.glob("*.pyc"))) == 1, "one cache file per module"

    # Same size and mtime, as with a .pyc: the cached code is what runs.
    stat = source.stat()
    source.write_text(FAKE_SDK.replace("VALUE = 1", "VALUE = 7"))
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert fresh_import().VALUE == 1

    # An edit that changes the size is compiled again.
    source.write_text(FAKE_SDK.replace("VALUE = 1", "VALUE = 42"))
    assert fresh_import().VALUE == 42
    assert len(list(cache.glob("*.pyc"))) == 1


def test_a_damaged_cache_file_is_compiled_again(fake_sdk):
    _, cache, fresh_import = fake_sdk
    fresh_import()
    [cached] = cache.glob("*.pyc")
    cached.write_bytes(cached.read_bytes()[:40])
    assert fresh_import().VALUE == 1
    assert fresh_import().scale.__annotations__["x"] == "typing.Optional[int]"


def test_the_loader_stays_off_when_its_cache_cannot_be_written(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    before = list(sys.meta_path)
    assert sdk_imports.install(packages=("fakesdk",), cache_dir=blocker / "cache") is False
    assert sys.meta_path == before


def test_the_default_cache_lives_in_the_users_cache_folder_not_beside_the_sdk(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert sdk_imports.default_cache_dir() == (tmp_path / "webstack" / "sdk-bytecode"
                                               / sys.implementation.cache_tag)


def test_the_render_command_loads_the_sdks_through_the_loader(tmp_path):
    result = subprocess.run([sys.executable, "-m", "cli", "render", "fastapi-local", "--out", str(tmp_path / "out")],
                            cwd=ROOT, env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")},
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    cached = list((tmp_path / "cache" / "webstack" / "sdk-bytecode").rglob("*.pyc"))
    assert len(cached) > 100, "pulumi_kubernetes' modules, compiled with postponed annotations"


def test_a_cache_write_that_fails_leaves_no_partial_file(fake_sdk, monkeypatch):
    _, cache, fresh_import = fake_sdk

    def refuse(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sdk_imports.os, "replace", refuse)
    assert fresh_import().VALUE == 1, "the import itself still works"
    assert list(cache.iterdir()) == []
