"""mg.save / mg.load: exact round trips and atomic, crash-safe writes."""

import os

import numpy as np
import pytest

import minigrad as mg
from minigrad import serialization
from minigrad.nn import Embedding, Linear, Module


class Model(Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed, self.out = Embedding(7, 3), Linear(3, 7)


def test_state_dict_round_trip_is_exact(tmp_path):
    model = Model()
    model.out.double()
    sd = model.state_dict()
    path = tmp_path / "model.npz"
    mg.save(sd, path)
    loaded = mg.load(path)
    assert list(loaded) == list(sd)
    for name, array in sd.items():
        assert loaded[name].dtype == array.dtype
        np.testing.assert_array_equal(loaded[name], array)
    assert loaded["out.weight"].dtype == np.float64 and loaded["embed.weight"].dtype == np.float32
    fresh = Model()
    fresh.out.double()
    fresh.load_state_dict(loaded)
    for p, q in zip(model.parameters(), fresh.parameters()):
        assert p.data.tobytes() == q.data.tobytes()


def test_nested_structures_round_trip(tmp_path):
    obj = {
        "model": {"w": np.arange(6, dtype=np.float64).reshape(2, 3) / 7},
        "state": {0: {"step": 3, "buf": np.array([1.5], np.float32)}, 1: {}},
        "betas": (0.9, 0.999),
        "history": [1.25, float("inf"), None, True, "text"],
        "scalar": np.float32(0.1),
        "tensor": mg.tensor([1.0, 2.0]),
        "ids": np.array([[1, 2]], np.int64),
    }
    path = os.path.join(tmp_path, "all.npz")  # str paths work as well as PathLike
    mg.save(obj, path)
    loaded = mg.load(path)
    assert loaded["betas"] == (0.9, 0.999) and isinstance(loaded["betas"], tuple)
    assert loaded["state"][0]["step"] == 3 and loaded["state"][1] == {}
    assert list(loaded["state"]) == [0, 1]
    assert loaded["history"] == [1.25, float("inf"), None, True, "text"]
    assert type(loaded["scalar"]) is np.float32 and loaded["scalar"] == np.float32(0.1)
    np.testing.assert_array_equal(loaded["tensor"], [1.0, 2.0])
    assert loaded["tensor"].dtype == np.float32
    for keys in (("model", "w"), ("state", 0, "buf"), ("ids",)):
        a, b = obj, loaded
        for k in keys:
            a, b = a[k], b[k]
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()


def test_files_are_plain_npz_readable_by_numpy(tmp_path):
    path = tmp_path / "ckpt.npz"
    mg.save({"model": {"out.weight": np.eye(2)}, "epoch": 4}, path)
    with np.load(path, allow_pickle=False) as archive:
        np.testing.assert_array_equal(archive["model/out.weight"], np.eye(2))
    np.savez(tmp_path / "foreign.npz", a=np.ones(2))
    assert list(mg.load(tmp_path / "foreign.npz")) == ["a"]


def test_colliding_array_names_stay_distinct(tmp_path):
    obj = {"a/b": np.zeros(1), "a": {"b": np.ones(1)}, "__minigrad__": np.full(1, 2.0)}
    mg.save(obj, tmp_path / "c.npz")
    loaded = mg.load(tmp_path / "c.npz")
    assert [v[0] for v in (loaded["a/b"], loaded["a"]["b"], loaded["__minigrad__"])] == [0, 1, 2]


def test_a_failed_write_leaves_the_old_checkpoint_and_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    mg.save({"w": np.zeros(3)}, path)
    original = path.read_bytes()
    written = []

    def failing_write(member, array, allow_pickle):
        written.append(array)
        if len(written) == 2:
            raise OSError("disk full")
        np.lib.format.write_array(member, array, allow_pickle=allow_pickle)

    monkeypatch.setattr(serialization, "write_array", failing_write)
    with pytest.raises(OSError, match="disk full"):
        mg.save({"w": np.ones(3), "v": np.ones(2)}, path)
    assert len(written) == 2  # the failure came in the middle of the write
    assert path.read_bytes() == original
    assert os.listdir(tmp_path) == ["model.npz"]
    np.testing.assert_array_equal(mg.load(path)["w"], np.zeros(3))


def test_the_temporary_file_is_renamed_from_the_same_folder(tmp_path, monkeypatch):
    renames = []
    real_replace = os.replace

    def spy(src, dst):
        renames.append((src, dst))
        assert os.path.exists(src) and not os.path.exists(dst)
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    path = tmp_path / "new.npz"
    mg.save({"w": np.ones(2)}, path)
    (src, dst), = renames
    assert os.path.dirname(os.path.abspath(src)) == str(tmp_path) and src != dst
    assert dst == str(path) and os.listdir(tmp_path) == ["new.npz"]


def test_errors(tmp_path):
    with pytest.raises(TypeError, match="cannot store a set"):
        mg.save({"bad": {1, 2}}, tmp_path / "x.npz")
    with pytest.raises(TypeError, match="dict keys must be str or int; got"):
        mg.save({(1, 2): np.zeros(1)}, tmp_path / "x.npz")
    with pytest.raises(TypeError, match="cannot store an object array"):
        mg.save({"o": np.array([None])}, tmp_path / "x.npz")
    assert os.listdir(tmp_path) == []
    with pytest.raises(FileNotFoundError):
        mg.load(tmp_path / "missing.npz")


def test_a_file_that_is_not_a_checkpoint_gives_an_error_that_suggests_no_unpickling(tmp_path):
    good = tmp_path / "good.npz"
    mg.save({"w": np.arange(100.0)}, good)
    np.save(tmp_path / "array.npy", np.zeros(3))
    (tmp_path / "text.npz").write_bytes(b"hello, this is not an archive at all" * 10)
    (tmp_path / "empty.npz").write_bytes(b"")
    (tmp_path / "truncated.npz").write_bytes(good.read_bytes()[:300])
    for name in ["text.npz", "empty.npz", "truncated.npz", "array.npy"]:
        with pytest.raises(ValueError) as info:
            mg.load(tmp_path / name)
        assert str(info.value) == (f"load: {str(tmp_path / name)!r} is not a valid checkpoint: "
                                   "not an .npz (zip) archive, or a truncated one")
    damaged = bytearray(good.read_bytes())
    damaged[300] ^= 0xFF
    (tmp_path / "damaged.npz").write_bytes(bytes(damaged))
    np.savez(tmp_path / "objects.npz", o=np.array([{}, 1], dtype=object))
    for name, cause in [("damaged.npz", "Bad CRC-32"), ("objects.npz", "Object arrays")]:
        with pytest.raises(ValueError, match=(
                f"is not a valid checkpoint: an array in it cannot be read \\({cause}.*\\); load "
                "reads .npz archives of plain \\(not object\\) arrays, as save and np.savez "
                "write them, and never unpickles$")) as info:
            mg.load(tmp_path / name)
        assert "allow_pickle=`" not in str(info.value)
    with pytest.raises(FileNotFoundError):
        mg.save({"w": np.ones(1)}, tmp_path / "no-such-folder" / "x.npz")
