import pytest

from galgen.errors import InputError
from galgen.io.inputs import expand_inputs


def _touch(path):
    path.write_bytes(b"")
    return path


def test_directory_glob_and_list_expand_in_order(tmp_path):
    a, b = _touch(tmp_path / "a.fits"), _touch(tmp_path / "b.fits.gz")
    _touch(tmp_path / "notes.txt")
    listing = tmp_path / "list.txt"
    listing.write_text("# cutouts\nb.fits.gz\na.fits  # first\n\n")
    assert expand_inputs([tmp_path]) == [a, b]
    assert expand_inputs([str(tmp_path / "*.fits*")]) == [a, b]
    assert expand_inputs([f"@{listing}"]) == [b, a]
    assert expand_inputs([a, str(tmp_path / "*.fits")]) == [a]


@pytest.mark.parametrize("item", ["missing.fits", "nothing-*.fits"])
def test_missing_inputs_name_the_item(tmp_path, item):
    with pytest.raises(InputError, match="nothing-|missing"):
        expand_inputs([str(tmp_path / item)])


def test_empty_directory_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="no FITS files"):
        expand_inputs([tmp_path])
