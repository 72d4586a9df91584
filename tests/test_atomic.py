import pytest

from galgen.io.atomic import atomic_output
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


def _dead_pid() -> int:
    import subprocess

    done = subprocess.Popen(["true"])
    done.wait()
    return done.pid


def test_stale_temporaries_of_dead_processes_on_this_host_are_swept(tmp_path):
    import os

    from galgen.io.atomic import sweep_stale, temp_path

    def renamed(path, *, host=None, pid=None):
        parts = path.name.split("-", 4)  # .tmp, host, pid, random, final name
        parts[1] = host or parts[1]
        parts[2] = str(pid or parts[2])
        return path.parent / "-".join(parts)

    dead = _dead_pid()
    stale_file = renamed(temp_path(tmp_path / "mock_000001.fits"), pid=dead)
    stale_file.write_bytes(b"half")
    stale_dir = renamed(temp_path(tmp_path / "train"), pid=dead)  # prep's dataset being built
    stale_dir.mkdir()
    (stale_dir / "images.npy").write_bytes(b"x")
    live = temp_path(tmp_path / "mock_000002.fits")  # this process: still writing
    live.write_bytes(b"busy")
    other_host = renamed(temp_path(tmp_path / "mock_000003.fits"), host="0badc0de", pid=dead)  # a shard elsewhere
    other_host.write_bytes(b"theirs")
    dotfile = tmp_path / ".hidden.fits"
    dotfile.write_bytes(b"not ours")
    assert sorted(sweep_stale(tmp_path)) == sorted([stale_file, stale_dir])
    assert live.exists() and other_host.exists() and dotfile.exists() and not stale_dir.exists()
    assert sweep_stale(tmp_path) == []  # once per directory and process
    assert os.getpid() == int(live.name.split("-")[2])


def test_os_errors_name_the_output_not_its_temporary(tmp_path):
    import errno

    from galgen.io.atomic import as_galgen_error, temp_path
    from galgen.errors import RuntimeFailure

    target = tmp_path / "mock_000000.fits"
    full = as_galgen_error(OSError(errno.ENOSPC, "No space left on device"), temp_path(target))
    assert isinstance(full, RuntimeFailure) and str(full).startswith(str(target) + ":")
    denied = as_galgen_error(OSError(errno.EROFS, "Read-only file system"), temp_path(target))
    assert isinstance(denied, InputError) and denied.exit_code == 2 and ".tmp-" not in str(denied)


def test_check_output_refuses_what_it_may_not_replace(tmp_path):
    from galgen.io.atomic import check_output

    mine = tmp_path / "mine.fits"
    mine.write_text("a thesis")
    with pytest.raises(InputError, match="already exists"):
        check_output(mine)
    with pytest.raises(InputError, match="not made by galgen"):
        check_output(mine, overwrite=True, made_by_galgen=lambda p: False)
    assert check_output(mine, overwrite=True, made_by_galgen=lambda p: True) == mine
    with pytest.raises(InputError, match="unsupported output format"):
        check_output(tmp_path / "fig.xyz", suffixes=(".png",))
    with pytest.raises(InputError, match="output directory does not exist"):
        check_output(tmp_path / "no" / "x.fits")
    assert check_output(tmp_path / "new" / "deeper" / "x.fits", parents=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.fits"]  # probing leaves nothing
