"""Read a legacy (pre-zip) PyTorch weights file without torch.

Input: the path of a ``.pth`` file written by ``torch.save`` before PyTorch 1.6
(a sequence of pickles followed by raw storages). Output: a dict mapping
parameter names to numpy arrays. Only the handful of globals a tensor file needs
are accepted; anything else in the pickle is refused, so a hostile file cannot
run code.
"""

from __future__ import annotations

import pickle
import struct
from collections import OrderedDict
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C

# torch storage class name -> numpy dtype of its elements
_STORAGE_DTYPES: dict[str, np.dtype] = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


class UnsafeWeightsError(ValueError):
    """The file asks for something a plain tensor file never needs."""


class _StorageType:
    def __init__(self, name: str) -> None:
        self.dtype = _STORAGE_DTYPES[name]


class _Storage:
    """A flat buffer filled in after the main pickle has been read."""

    def __init__(self, dtype: np.dtype, size: int) -> None:
        self.dtype = dtype
        self.size = size
        self.data: np.ndarray | None = None


class _TensorRef:
    """A view into a storage, materialised once the storages are loaded."""

    def __init__(self, storage: _Storage, offset: int, shape: tuple, stride: tuple) -> None:
        self.storage, self.offset, self.shape, self.stride = storage, offset, shape, stride

    def to_numpy(self) -> np.ndarray:
        flat = self.storage.data
        if flat is None:
            raise ValueError("refers to a storage that the file does not contain")
        # as_strided trusts its arguments: a view reaching past the buffer would read
        # (or crash on) arbitrary memory, so a hostile file must not choose them freely.
        if (len(self.shape) != len(self.stride) or self.offset < 0
                or any(n < 0 for n in self.shape) or any(s < 0 for s in self.stride)):
            raise ValueError(f"invalid shape {self.shape}, stride {self.stride} or offset {self.offset}")
        if 0 in self.shape:
            return np.empty(self.shape, dtype=flat.dtype)
        last = self.offset + sum((n - 1) * s for n, s in zip(self.shape, self.stride))
        if last >= len(flat):
            raise ValueError(f"shape {self.shape} at offset {self.offset} reaches past its storage "
                             f"of {len(flat)} elements")
        itemsize = flat.dtype.itemsize
        if not self.shape:
            return flat[self.offset].copy()
        view = np.lib.stride_tricks.as_strided(
            flat[self.offset:],
            shape=self.shape,
            strides=tuple(s * itemsize for s in self.stride),
            writeable=False,
        )
        return np.array(view)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    return _TensorRef(storage, int(storage_offset), tuple(size), tuple(stride))


def _rebuild_tensor(storage, storage_offset, size, stride):
    return _TensorRef(storage, int(storage_offset), tuple(size), tuple(stride))


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: BinaryIO, storages: dict[str, _Storage]) -> None:
        super().__init__(file)
        self._storages = storages

    def find_class(self, module: str, name: str) -> Any:
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor_v2
        if module == "torch._utils" and name == "_rebuild_tensor":
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise UnsafeWeightsError(f"refusing to load global {module}.{name} from a weights file")

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise UnsafeWeightsError(f"unexpected persistent id {pid!r}")
        _, storage_type, key, _location, size = pid[:5]
        if not isinstance(storage_type, _StorageType):
            raise UnsafeWeightsError(f"unexpected storage type {storage_type!r}")
        if key not in self._storages:
            self._storages[key] = _Storage(storage_type.dtype, int(size))
        return self._storages[key]


class _PlainUnpickler(pickle.Unpickler):
    """For the header pickles, which hold only numbers, strings and dicts."""

    def find_class(self, module: str, name: str) -> Any:
        raise UnsafeWeightsError(f"refusing to load global {module}.{name} from a weights file")


def load_legacy_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Return ``{name: array}`` from a legacy ``torch.save`` file, refusing any code.

    Raises ``UnsafeWeightsError`` for a file that asks for code and ``ValueError``
    for anything else that is not a well-formed legacy file.
    """
    path = Path(path)
    try:
        return _load(path)
    except (pickle.UnpicklingError, EOFError, struct.error, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise ValueError(f"{path}: not a readable legacy PyTorch file ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else 'no detail'})") from None


def _load(path: Path) -> dict[str, np.ndarray]:
    with path.open("rb") as f:
        if f.read(4) == b"PK\x03\x04":
            raise ValueError(f"{path}: a zip-format PyTorch file (torch.save since 1.6); "
                             "only the legacy format can be read without torch")
        f.seek(0)
        magic = _PlainUnpickler(f).load()
        if magic != LEGACY_MAGIC:
            raise ValueError(f"{path}: not a legacy PyTorch file (magic number {magic!r})")
        _PlainUnpickler(f).load()  # protocol version
        sys_info = _PlainUnpickler(f).load()
        if not sys_info.get("little_endian", True):
            raise ValueError(f"{path}: big-endian weights are not supported")
        storages: dict[str, _Storage] = {}
        result = _RestrictedUnpickler(f, storages).load()
        keys = _PlainUnpickler(f).load()
        for key in keys:
            storage = storages[key]
            (count,) = struct.unpack("<q", f.read(8))
            raw = f.read(count * storage.dtype.itemsize)
            if len(raw) != count * storage.dtype.itemsize:
                raise ValueError(f"{path}: truncated storage {key}")
            storage.data = np.frombuffer(raw, dtype=storage.dtype)
    if not isinstance(result, dict):
        raise ValueError(f"{path}: expected a state dict, found {type(result).__name__}")
    arrays = {}
    for name, ref in result.items():
        if isinstance(ref, _TensorRef):
            try:
                arrays[name] = ref.to_numpy()
            except ValueError as exc:
                raise ValueError(f"{path}: tensor {name!r}: {exc}") from None
    return arrays
