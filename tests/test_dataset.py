import json
import os

import numpy as np
import pytest

from galgen.dataset import dataset_directory, open_dataset, write_images, write_meta
from galgen.errors import InputError
from galgen.normalize import Normalizer

NORM = Normalizer(bands="gr", lower=(-0.05, -0.1), upper=(5.0, 6.0))


def _write_dataset(directory, count=3, size=8):
    directory.mkdir()
    shape = (count, 2, size, size)
    rows = np.linspace(-1, 1, int(np.prod(shape)), dtype=np.float32).reshape(shape)
    write_images(directory, shape, [rows[:2], rows[2:]])
    write_meta(directory, {"bands": "gr", "size": size, "count": count, "normalizer": NORM.to_dict()})
    return directory


def test_round_trip_opens_as_memmap_with_normalizer(tmp_path):
    ds = open_dataset(_write_dataset(tmp_path / "ds"))
    assert isinstance(ds.images, np.memmap) and ds.images.dtype == np.float32
    assert ds.images.shape == (3, 2, 8, 8) and len(ds) == 3 and ds.size == 8 and ds.bands == "gr"
    assert ds.normalizer == NORM
    assert ds.images[0, 0, 0, 0] == -1 and ds.images[-1, -1, -1, -1] == 1
    assert ds.meta["format"] == "galgen-dataset"


def test_missing_and_corrupt_datasets_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="no such dataset"):
        open_dataset(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no dataset.json"):
        open_dataset(tmp_path / "empty")
    bad = _write_dataset(tmp_path / "bad")
    (bad / "dataset.json").write_text("{not json")
    with pytest.raises(InputError, match="corrupt dataset.json"):
        open_dataset(bad)
    (bad / "dataset.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(InputError, match="not a galgen dataset"):
        open_dataset(bad)


def test_images_that_disagree_with_the_metadata_are_refused(tmp_path):
    ds = _write_dataset(tmp_path / "ds")
    write_meta(ds, {"bands": "gr", "size": 8, "count": 4, "normalizer": NORM.to_dict()})
    with pytest.raises(InputError, match="promises"):
        open_dataset(ds)
    (ds / "images.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(InputError, match="corrupt images.npy"):
        open_dataset(ds)
    (ds / "images.npy").unlink()
    with pytest.raises(InputError, match="no images.npy"):
        open_dataset(ds)


def test_dataset_directory_is_all_or_nothing(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(RuntimeError):
        with dataset_directory(target) as work:
            (work / "partial").write_text("x")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    with dataset_directory(target) as work:
        write_meta(work, {"count": 1})
    assert (target / "dataset.json").exists()
    with pytest.raises(InputError, match="already exists"):
        with dataset_directory(target):
            pass
    with dataset_directory(target, overwrite=True) as work:
        (work / "second").write_text("2")
    assert sorted(p.name for p in target.iterdir()) == ["second"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert oct(target.stat().st_mode & 0o777) == oct(0o777 & ~_umask())  # not mkdtemp's 0700


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_overwrite_replaces_only_a_galgen_dataset_that_holds_no_input(tmp_path):
    thesis = tmp_path / "work" / "thesis.txt"
    thesis.parent.mkdir()
    thesis.write_text("four years")
    with pytest.raises(InputError, match="not made by galgen"):
        with dataset_directory(thesis.parent, overwrite=True):
            pass
    assert thesis.read_text() == "four years"
    target = tmp_path / "cut"
    with dataset_directory(target) as work:
        write_meta(work, {"count": 1})
    cutout = target / "a.fits"
    cutout.write_bytes(b"x")
    for inputs in ([cutout], [target]):
        with pytest.raises(InputError, match="holds the input"):
            with dataset_directory(target, overwrite=True, inputs=inputs):
                pass
    assert cutout.exists()


def test_write_images_checks_the_row_count(tmp_path):
    with pytest.raises(ValueError, match="expected 3"):
        write_images(tmp_path, (3, 1, 2, 2), [np.zeros((2, 1, 2, 2))])
    with pytest.raises(ValueError, match="does not fit"):
        write_images(tmp_path, (1, 1, 2, 2), [np.zeros((1, 2, 2, 2))])
