"""The restricted unpickler: malicious pickles are refused without side effects; real torch.save files read back."""

from __future__ import annotations

import argparse
import datetime
import io
import os
import pickle
import subprocess
import sys
import textwrap
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from yolov12.weights import (
    CorruptCheckpointError,
    Placeholder,
    UnsafeCheckpointError,
    UnsupportedCheckpointError,
    placeholder_state_dict,
    read_foreign_checkpoint,
)
from yolov12.weights.placeholders import placeholder_class, plain_data


def _write_pt(path: Path, pickle_bytes: bytes, records: dict[str, bytes] | None = None) -> Path:
    """A zip laid out like torch.save's: ``archive/data.pkl``, ``archive/byteorder``, ``archive/data/<key>``."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle_bytes)
        archive.writestr("archive/byteorder", "little")
        for key, data in (records or {}).items():
            archive.writestr(f"archive/data/{key}", data)
    return path


def _call_pickle(module: str, name: str, *args: object) -> bytes:
    """Protocol-2 pickle of ``module.name(*args)`` written opcode by opcode (nothing is imported or called)."""
    arguments = pickle.dumps(args, protocol=2)[2:-1]  # without PROTO and STOP
    return b"\x80\x02c" + f"{module}\n{name}\n".encode() + arguments + b"R."


class _ReducePayload:
    """What an attacker pickles: unpickling it calls ``os.system(command)``."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def _payload(global_name: str, marker: Path) -> bytes:
    touch, code = f"touch {marker}", f"open({str(marker)!r}, 'w').close()"
    calls = {
        "os.system": ("os", "system", touch),
        "posix.system": ("posix", "system", touch),
        "builtins.eval": ("builtins", "eval", code),
        "builtins.exec": ("__builtin__", "exec", code),  # Python 2 spelling, mapped as fix_imports does
        "subprocess.Popen": ("subprocess", "Popen", ["touch", str(marker)]),
        "builtins.getattr": ("builtins", "getattr", "x", "y"),
        "builtins.__import__": ("builtins", "__import__", "os"),
        "importlib.import_module": ("importlib", "import_module", "os"),
        "runpy.run_path": ("runpy", "run_path", str(marker)),
        "torch.load": ("torch", "load", str(marker)),
    }
    module, name, *args = calls[global_name]
    return _call_pickle(module, name, *args)


@pytest.mark.parametrize("global_name", [
    "os.system", "posix.system", "builtins.eval", "builtins.exec", "subprocess.Popen", "builtins.getattr",
    "builtins.__import__", "importlib.import_module", "runpy.run_path", "torch.load",
])
def test_pickle_calling_code_is_refused_without_side_effects(global_name: str, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = _write_pt(tmp_path / "evil.pt", _payload(global_name, marker))
    with pytest.raises(UnsafeCheckpointError) as error:
        read_foreign_checkpoint(path)
    assert str(error.value) == (
        f"refusing to load {path}: it references {global_name}, which could execute code; "
        "only tensors and plain data are read from foreign checkpoints"
    )
    assert not marker.exists()


def test_reduce_payload_inside_a_real_checkpoint_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"model": {"w": torch.ones(3)}, "hook": _ReducePayload(f"touch {marker}")}, path)
    with pytest.raises(UnsafeCheckpointError, match=r"references (os|posix)\.system"):
        read_foreign_checkpoint(path)
    assert not marker.exists()


def test_copyreg_reconstructor_only_builds_placeholders(tmp_path: Path) -> None:
    # copyreg._reconstructor(builtins.dict, builtins.object, None): a real class, not a placeholder.
    body = b"\x80\x02ccopyreg\n_reconstructor\nc__builtin__\ndict\nc__builtin__\nobject\nN\x87R."
    with pytest.raises(UnsafeCheckpointError, match="copyreg._reconstructor is asked to build"):
        read_foreign_checkpoint(_write_pt(tmp_path / "r.pt", body))
    # The same call for a foreign model class gives an inert placeholder.
    body = b"\x80\x02ccopyreg\n_reconstructor\ncmodels.yolo\nModel\nc__builtin__\nobject\nN\x87R."
    obj = read_foreign_checkpoint(_write_pt(tmp_path / "ok.pt", body))
    assert isinstance(obj, Placeholder) and obj.qualified_name == "models.yolo.Model"


def test_legacy_and_torchscript_files_are_refused_with_the_fix(tmp_path: Path) -> None:
    legacy = tmp_path / "legacy.pt"
    torch.save({"w": torch.ones(2)}, legacy, _use_new_zipfile_serialization=False)
    with pytest.raises(UnsupportedCheckpointError, match="legacy.*re-save it with torch>=1.6"):
        read_foreign_checkpoint(legacy)

    scripted = tmp_path / "scripted.pt"  # the layout of torch.jit.save: code/ and constants.pkl beside data.pkl
    with zipfile.ZipFile(scripted, "w") as archive:
        for name in ("data.pkl", "constants.pkl", "code/__torch__.py"):
            archive.writestr(f"scripted/{name}", b"")
    with pytest.raises(UnsupportedCheckpointError, match="TorchScript"):
        read_foreign_checkpoint(scripted)


def test_damaged_files_raise_corrupt_checkpoint(tmp_path: Path) -> None:
    good = tmp_path / "good.pt"
    torch.save({"w": torch.arange(100.0)}, good)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:300])
    with pytest.raises(CorruptCheckpointError, match="damaged or truncated zip"):
        read_foreign_checkpoint(truncated)

    with zipfile.ZipFile(good) as archive:
        pickle_bytes = archive.read(next(n for n in archive.namelist() if n.endswith("data.pkl")))
    with pytest.raises(CorruptCheckpointError, match="storage record 'archive/data/0' is missing"):
        read_foreign_checkpoint(_write_pt(tmp_path / "nodata.pt", pickle_bytes))
    with pytest.raises(CorruptCheckpointError, match="holds 8 bytes, expected 100 x 4"):
        read_foreign_checkpoint(_write_pt(tmp_path / "short.pt", pickle_bytes, {"0": b"\0" * 8}))

    text = tmp_path / "notes.pt"
    text.write_text("hello")
    with pytest.raises(CorruptCheckpointError, match="not a PyTorch checkpoint"):
        read_foreign_checkpoint(text)


def test_plain_data_and_tensors_read_back_exactly(tmp_path: Path) -> None:
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    data = {
        "float": torch.randn(3, 5), "half": torch.randn(4).half(), "bfloat": torch.randn(4).bfloat16(),
        "long": torch.arange(5), "bool": torch.tensor([True, False]), "scalar": torch.tensor(3.5),
        "empty": torch.zeros(0, 3), "transposed": base.t(), "view": base[1:3, 2:5],
        "state_dict": OrderedDict([("a.weight", torch.ones(2, 2)), ("a.bias", torch.zeros(2))]),
        "parameter": nn.Parameter(torch.randn(2)), "numbers": [1, 2.5, None, True, "x", b"raw", 3 + 4j],
        "set": {1, 2}, "frozen": frozenset({"a"}), "tuple": (1, (2, 3)), "size": torch.Size([2, 3]),
        "slice": slice(1, 5, 2), "dtype": torch.float16, "path": Path("/data/coco.yaml"),
        "namespace": argparse.Namespace(lr0=0.01, name="exp"), "array": np.arange(3, dtype=np.float32),
        "date": datetime.datetime(2025, 2, 18, 10, 0, 0),
    }
    path = tmp_path / "data.pt"
    torch.save(data, path)

    loaded = read_foreign_checkpoint(path)

    for key in ("float", "half", "bfloat", "long", "bool", "scalar", "empty", "transposed", "view", "parameter"):
        assert loaded[key].dtype == data[key].dtype, key
        assert torch.equal(loaded[key], data[key]), key
        assert loaded[key].stride() == data[key].stride(), key
    assert loaded["view"].untyped_storage().data_ptr() == loaded["transposed"].untyped_storage().data_ptr()
    assert isinstance(loaded["parameter"], nn.Parameter)
    assert type(loaded["state_dict"]) is OrderedDict and list(loaded["state_dict"]) == ["a.weight", "a.bias"]
    for key in ("numbers", "set", "frozen", "tuple", "size", "slice", "dtype"):
        assert loaded[key] == data[key], key
    assert isinstance(loaded["path"], Placeholder) and plain_data(loaded["path"]) == "/data/coco.yaml"
    assert plain_data(loaded["namespace"]) == {"lr0": 0.01, "name": "exp"}
    assert isinstance(loaded["array"], Placeholder) and isinstance(loaded["date"], Placeholder)


def test_big_endian_storages_are_byteswapped(tmp_path: Path) -> None:
    little = tmp_path / "little.pt"
    tensor = torch.tensor([1.0, -2.5, 3.25])
    torch.save({"t": tensor}, little)
    with zipfile.ZipFile(little) as archive:
        records = {n: archive.read(n) for n in archive.namelist()}
    big = tmp_path / "big.pt"
    with zipfile.ZipFile(big, "w") as archive:
        for name, data in records.items():
            if name.endswith("/byteorder"):
                data = b"big"
            elif name.endswith("/data/0"):
                data = np.frombuffer(data, dtype="<f4").astype(">f4").tobytes()
            archive.writestr(name, data)
    assert torch.equal(read_foreign_checkpoint(big)["t"], tensor)


FOREIGN_MODEL_SOURCE = textwrap.dedent('''
    """A foreign model package (like YOLOv5's ``models``); its code must never run while unpickling."""
    import pathlib

    import torch
    from torch import nn

    MARKER = pathlib.Path(__file__).with_name("code_ran")


    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv = nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.bn = nn.BatchNorm2d(c)
            self.m = nn.Sequential(nn.Conv2d(c, c, 1), nn.SiLU(), nn.ModuleList([nn.Linear(c, c), nn.Identity()]))
            self.register_buffer("anchors", torch.arange(4.0))
            self.register_buffer("cache", torch.ones(2), persistent=False)
            self.register_parameter("unused", None)
            self.gamma = nn.Parameter(0.01 * torch.ones(c))

        def __setstate__(self, state):
            MARKER.write_text("__setstate__ ran")
            super().__setstate__(state)


    class TinyNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = nn.ModuleList([Block(4), nn.Sequential(Block(4), nn.Conv2d(4, 2, 1))])
            self.names = {0: "a", 1: "b"}
            self.yaml = {"nc": 2}

        def __reduce_ex__(self, protocol):
            MARKER.write_text("__reduce_ex__ ran at load")  # runs at save time too; the test deletes the marker
            return super().__reduce_ex__(protocol)
''')


@pytest.fixture
def foreign_models_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Import a real ``models`` package from tmp_path, and forget it afterwards."""
    if "models" in sys.modules:
        pytest.skip("a 'models' package is already imported; cannot shadow it safely")
    package = tmp_path / "src" / "models"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "tiny_net.py").write_text(FOREIGN_MODEL_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    import models.tiny_net as module  # noqa: PLC0415 - imported from tmp_path on purpose

    yield module
    for name in [n for n in sys.modules if n == "models" or n.startswith("models.")]:
        del sys.modules[name]


def test_foreign_module_tree_becomes_placeholders_with_the_real_state_dict(
    foreign_models_package, tmp_path: Path,
) -> None:
    torch.manual_seed(0)
    net = foreign_models_package.TinyNet()
    path = tmp_path / "tiny.pt"
    torch.save({"model": net, "ema": None, "epoch": 3}, path)
    foreign_models_package.MARKER.unlink(missing_ok=True)

    checkpoint = read_foreign_checkpoint(path)

    assert not foreign_models_package.MARKER.exists(), "foreign code ran while unpickling"
    model = checkpoint["model"]
    assert isinstance(model, Placeholder) and model.qualified_name == "models.tiny_net.TinyNet"
    assert model.attribute("names") == {0: "a", 1: "b"} and model.attribute("yaml") == {"nc": 2}
    expected = net.state_dict()
    restored = placeholder_state_dict(model)
    assert list(restored) == list(expected)  # same keys, same order; non-persistent 'cache' and None skipped
    for key, tensor in expected.items():
        assert torch.equal(restored[key], tensor), key
    assert checkpoint["epoch"] == 3 and checkpoint["ema"] is None


def test_placeholder_state_dict_rejects_non_modules() -> None:
    with pytest.raises(TypeError, match="expected a placeholder nn.Module"):
        placeholder_state_dict({"a": torch.ones(1)})


def test_reader_never_imports_the_foreign_package(tmp_path: Path) -> None:
    """Read a checkpoint naming ultralytics classes in a fresh interpreter: no ultralytics module gets imported."""
    body = b"\x80\x02cultralytics.nn.tasks\nDetectionModel\n)\x81}X\x01\x00\x00\x00aK\x02sb."
    path = _write_pt(tmp_path / "u.pt", body)
    script = (
        "import sys; from yolov12.weights import read_foreign_checkpoint as r; o = r(sys.argv[1]); "
        "assert o.qualified_name == 'ultralytics.nn.tasks.DetectionModel' and o.state == {'a': 2}, o.state; "
        "assert not [m for m in sys.modules if m.startswith('ultralytics')]"
    )
    subprocess.run([sys.executable, "-c", script, str(path)], check=True, timeout=300)


def test_placeholder_records_constructor_arguments() -> None:
    cls = placeholder_class("ultralytics.utils.IterableSimpleNamespace")
    assert placeholder_class("ultralytics.utils.IterableSimpleNamespace") is cls
    obj = cls(1, key="v")
    obj.__setstate__({"x": 1})
    assert (obj.args, obj.kwargs, obj.state) == ((1,), {"key": "v"}, {"x": 1})
    assert plain_data(obj) == {"x": 1}
    assert repr(obj) == "<placeholder ultralytics.utils.IterableSimpleNamespace>"
    assert plain_data(io) == str(io)  # anything unknown becomes a string


def test_build_cannot_tamper_with_shared_functions(tmp_path: Path) -> None:
    """BUILD with slot state sets attributes on whatever find_class returned; that must not reach torch itself."""
    defaults = torch._utils._rebuild_tensor_v2.__defaults__
    # _rebuild_tensor_v2, then BUILD (None, {"__defaults__": (1,)}).
    body = b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\nN}X\x0c\x00\x00\x00__defaults__K\x01\x85s\x86b."
    tampered = read_foreign_checkpoint(_write_pt(tmp_path / "t.pt", body))
    assert tampered.__defaults__ == (1,)  # only the per-load wrapper changed
    assert torch._utils._rebuild_tensor_v2.__defaults__ == defaults
    torch.save({"w": torch.ones(2)}, tmp_path / "ok.pt")
    assert torch.equal(read_foreign_checkpoint(tmp_path / "ok.pt")["w"], torch.ones(2))
