"""Serialization: ``mg.save`` and ``mg.load`` of state dicts as ``.npz`` files, written atomically.

``save`` accepts a state dict, or any nesting of dicts (str or int keys), lists and tuples
around arrays, Tensors (stored as arrays), NumPy scalars, and Python numbers, strings, bools
and None: a model's and an optimizer's state together, say. Each array is stored under its
path of keys ("layers.0.weight", "optimizer/state/0/exp_avg"), so ``np.load`` reads the file
too; the nesting is kept as JSON in one more entry. Nothing is pickled.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
import zipfile
from typing import Any

import numpy as np
from numpy.lib.format import write_array

from minigrad.tensor import Tensor

_STRUCTURE = "__minigrad__"


def save(obj: Any, path: str | os.PathLike) -> None:
    """Write ``obj`` to ``path`` (exactly that name) as an ``.npz`` archive.

    The archive is written to a temporary file in the same folder and renamed over ``path``
    only once it is complete, so a crash never leaves a half-written checkpoint behind.
    """
    arrays: dict[str, np.ndarray] = {}
    structure = _encode(obj, (), arrays)
    arrays[_STRUCTURE] = np.array(json.dumps(structure))
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "xb") as f:
            with zipfile.ZipFile(f, "w") as archive:
                for name, array in arrays.items():
                    with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                        write_array(member, array, allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def load(path: str | os.PathLike) -> Any:
    """Read what ``save`` wrote (arrays come back as ndarrays; a Tensor comes back as its
    array). A plain ``.npz`` from elsewhere loads as a dict of name -> array. Nothing is
    unpickled: a file that is not an ``.npz`` of plain arrays raises ValueError."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        if not zipfile.is_zipfile(f):
            raise ValueError(f"load: {path!r} is not a valid checkpoint: not an .npz (zip) "
                             "archive, or a truncated one")
        try:
            with np.load(f, allow_pickle=False) as archive:
                arrays = {name: archive[name] for name in archive.files}
        except (zipfile.BadZipFile, ValueError, EOFError) as e:
            raise ValueError(
                f"load: {path!r} is not a valid checkpoint: an array in it cannot be read "
                f"({e}); load reads .npz archives of plain (not object) arrays, as save and "
                "np.savez write them, and never unpickles"
            ) from None
    if _STRUCTURE not in arrays:
        return arrays
    return _decode(json.loads(str(arrays.pop(_STRUCTURE))), arrays)


def _encode(obj: Any, keys: tuple, arrays: dict[str, np.ndarray]) -> Any:
    """A JSON-able description of ``obj``; its arrays go into ``arrays`` under unique names."""
    if isinstance(obj, (Tensor, np.ndarray, np.generic)):
        array = np.asarray(obj.data if isinstance(obj, Tensor) else obj)
        if array.dtype.hasobject:
            raise TypeError(f"save: cannot store an object array (at {_where(keys)})")
        name = base = "/".join(map(str, keys)) or "array"
        count = 0
        while name in arrays or name == _STRUCTURE:
            count += 1
            name = f"{base}#{count}"
        arrays[name] = array
        return {"__scalar__" if isinstance(obj, np.generic) else "__array__": name}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, dict):
        for k in obj:
            if isinstance(k, bool) or not isinstance(k, (str, int)):
                raise TypeError(f"save: dict keys must be str or int; got {k!r} at {_where(keys)}")
        return {"__dict__": [[k, _encode(v, keys + (k,), arrays)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        items = [_encode(v, keys + (i,), arrays) for i, v in enumerate(obj)]
        return items if isinstance(obj, list) else {"__tuple__": items}
    raise TypeError(f"save: cannot store a {type(obj).__name__} (at {_where(keys)})")


def _decode(node: Any, arrays: dict[str, np.ndarray]) -> Any:
    """Rebuild the object that ``_encode`` described."""
    if isinstance(node, list):
        return [_decode(v, arrays) for v in node]
    if not isinstance(node, dict):
        return node
    (kind, value), = node.items()
    if kind == "__array__":
        return arrays[value]
    if kind == "__scalar__":
        return arrays[value][()]
    if kind == "__tuple__":
        return tuple(_decode(v, arrays) for v in value)
    return {k: _decode(v, arrays) for k, v in value}


def _where(keys: tuple) -> str:
    return "the top level" if not keys else "key path " + "/".join(map(str, keys))
