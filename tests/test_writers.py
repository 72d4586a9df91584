"""galgen.io.writers: files written by helper processes come back in order, errors as they are, nothing inline lost."""

from __future__ import annotations

import operator
import os

import pytest
from astropy.io import fits

from conftest import assert_fitsverify_clean
from galgen.io.cube import read_cube, read_provenance
from galgen.flows.sample import SampleConfig, mock_name, plan_writers, run
from galgen.model import load_model
from galgen.io.writers import MAX_WRITERS, Writers, spare_cores
from tiny_model import make_tiny_model


def test_helpers_return_the_results_in_the_order_submitted():
    with Writers(2) as writers:
        for i in range(23):  # more than IN_FLIGHT per helper: submit waits for the oldest
            writers.submit(operator.mul, i, 3)
        assert writers.results() == [3 * i for i in range(23)]


def test_without_helpers_each_write_happens_at_once_in_this_process():
    seen = []
    with Writers(0) as writers:
        writers.submit(seen.append, 1)
        assert seen == [1]  # already done before results()
        assert writers.results() == [None]


def test_a_helpers_error_comes_back_as_it_is():
    with pytest.raises(ZeroDivisionError):
        with Writers(1) as writers:
            writers.submit(operator.truediv, 1, 0)
            writers.results()


def test_spare_cores_leave_the_busy_processes_theirs_and_stop_at_the_cap():
    cores = os.cpu_count() or 1
    assert spare_cores(1) == max(0, min(MAX_WRITERS, cores - 1))
    assert spare_cores(cores) == 0
    assert spare_cores(cores + 5) == 0


def test_sampling_with_helper_processes_writes_the_same_mocks(tmp_path):
    model = load_model(make_tiny_model(tmp_path / "tiny.safetensors"), device="cpu")
    assert plan_writers(model, SampleConfig(count=1000), 1000) == 0  # the CPU's cores already draw
    assert plan_writers(model, SampleConfig(count=5, writers=2), 5) == 2
    for writers in (0, 2):
        result = run(tmp_path / str(writers), model=model, config=SampleConfig(count=5, steps=2, writers=writers,
                                                                               workers=1))
        assert [p.name for p in result.written] == [mock_name(i, 5) for i in range(5)]
    for i in range(5):
        inline, helped = (tmp_path / str(w) / mock_name(i, 5) for w in (0, 2))
        assert read_cube(helped).data.tobytes() == read_cube(inline).data.tobytes()
        a, b = read_provenance(inline), read_provenance(helped)
        assert {k: v for k, v in a.items() if k != "date"} == {k: v for k, v in b.items() if k != "date"}
        cards = [{c.keyword: c.value for c in fits.getheader(p).cards if c.keyword not in ("DATE", "GGDATE", "CHECKSUM")}
                 for p in (inline, helped)]
        assert cards[0] == cards[1] and cards[0]["CTYPE1"] == "RA---TAN"  # the WCS survives its trip as a string
    assert_fitsverify_clean(tmp_path / "2" / mock_name(4, 5))
    assert not [p for p in (tmp_path / "2").iterdir() if p.name.startswith(".tmp")]


def test_worker_processes_write_their_own_files_even_when_helpers_are_asked_for(tmp_path):
    # a worker process is daemonic and cannot start helpers: asking for them must not break a 2-worker run
    model = load_model(make_tiny_model(tmp_path / "tiny.safetensors"), device="cpu")
    result = run(tmp_path / "out", model=model, config=SampleConfig(count=4, steps=2, writers=2, workers=2))
    assert [p.name for p in result.written] == [mock_name(i, 4) for i in range(4)]
    assert all(read_cube(p).data.shape == (3, 16, 16) for p in result.written)
