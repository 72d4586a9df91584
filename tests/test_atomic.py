import pytest

from galgen.atomic import atomic_output
from galgen.errors import InputError


def test_the_file_appears_only_when_the_write_finished(tmp_path):
    target = tmp_path / "out.fits.gz"
    with atomic_output(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.endswith("out.fits.gz") and tmp.name.startswith(".")
        tmp.write_bytes(b"data")
        assert not target.exists()
    assert target.read_bytes() == b"data"


def test_a_failed_write_leaves_nothing_behind(tmp_path):
    target = tmp_path / "model.safetensors"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_output(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("disk full")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]


def test_missing_directory_is_an_error_unless_parents_are_wanted(tmp_path):
    with pytest.raises(InputError, match="output directory does not exist"):
        with atomic_output(tmp_path / "no" / "x.fits"):
            pass
    with atomic_output(tmp_path / "new" / "x.bin", parents=True) as tmp:
        tmp.write_bytes(b"1")
    assert (tmp_path / "new" / "x.bin").exists()


def test_outputs_get_the_usual_permissions_whatever_the_writer(tmp_path):
    import os

    umask = os.umask(0o022)
    try:
        with atomic_output(tmp_path / "w.safetensors") as tmp:
            fd = os.open(tmp, os.O_CREAT | os.O_WRONLY, 0o600)  # as safetensors' writer does
            os.close(fd)
        assert (tmp_path / "w.safetensors").stat().st_mode & 0o777 == 0o644
    finally:
        os.umask(umask)
