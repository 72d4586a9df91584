"""Precision chosen by the hardware: bf16 autocast where it runs faster, float32 elsewhere, and why."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from galgen.cli import app
from galgen.engine import runtime
from galgen.engine.runtime import Precision, choose_precision


def play_cpu(monkeypatch, units, capability="AVX512"):
    """Make this process believe its CPU has ``units`` ("AMX-BF16", "AVX512_BF16" or None)."""
    monkeypatch.setattr(runtime, "cpu_bf16_units", lambda: units)
    monkeypatch.setattr(runtime, "cpu_capability", lambda: capability)
    monkeypatch.setattr(runtime, "cpu_arch", lambda: "x86_64")


@pytest.mark.parametrize("units, capability", [("AMX-BF16", "AVX512"), ("AVX512_BF16", "AVX512")])
def test_a_cpu_with_bf16_units_runs_bf16(monkeypatch, units, capability):
    play_cpu(monkeypatch, units, capability)
    assert choose_precision("cpu") == Precision(True, f"cpu has {units}")
    assert str(choose_precision(torch.device("cpu"))) == f"bf16 (cpu has {units})"


@pytest.mark.parametrize("capability", ["AVX2", "AVX512", "DEFAULT"])
def test_a_cpu_without_bf16_units_runs_float32(monkeypatch, capability):
    play_cpu(monkeypatch, None, capability)
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    chosen = choose_precision("cpu")
    assert chosen == Precision(False, f"cpu {capability} has no bf16 units")
    assert chosen.to_dict() == {"dtype": "float32", "bf16": False, "reason": f"cpu {capability} has no bf16 units"}


@pytest.mark.parametrize("supported", [True, False])
def test_a_cuda_device_runs_bf16_only_when_it_supports_it(monkeypatch, supported):
    monkeypatch.setattr(runtime, "cuda_bf16_support", lambda device: (supported, "GPU X"))
    play_cpu(monkeypatch, None)  # the CPU's units do not matter for a GPU
    chosen = choose_precision("cuda:0")
    assert chosen.bf16 is supported
    assert chosen.reason == ("cuda GPU X supports bf16" if supported else "cuda GPU X has no bf16 support")


@pytest.mark.parametrize("requested", [True, False])
def test_an_explicit_request_wins_everywhere(monkeypatch, requested):
    monkeypatch.setattr(runtime, "cuda_bf16_support", lambda device: (not requested, "GPU X"))
    for units in ("AMX-BF16", None):
        play_cpu(monkeypatch, units)
        for device in ("cpu", "cuda"):
            assert choose_precision(device, requested) == Precision(requested, f"asked for with bf16={requested}")


def test_a_cpu_of_another_architecture_runs_float32_until_measured(monkeypatch):
    play_cpu(monkeypatch, None, "SVE256")
    monkeypatch.setattr(runtime, "cpu_arch", lambda: "aarch64")
    assert choose_precision("cpu") == Precision(False, "no bf16 measured on aarch64 cpus")


def test_other_devices_run_float32():
    assert choose_precision(torch.device("meta")) == Precision(False, "no bf16 measured on meta")


def test_cpu_units_come_from_torch_or_proc_cpuinfo_and_obey_onednn_isa(monkeypatch, tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 amx_tile\nprocessor\t: 1\n")
    assert runtime._proc_cpu_flags(str(cpuinfo)) == {"avx512_bf16"}
    assert runtime._proc_cpu_flags(str(tmp_path / "absent")) == set()

    def detected(torch_flags, proc_flags, isa=None):
        monkeypatch.setattr(runtime, "_torch_cpu_flags", lambda: set(torch_flags))
        monkeypatch.setattr(runtime, "_proc_cpu_flags", lambda: set(proc_flags))
        monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
        if isa is None:
            monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
        else:
            monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", isa)
        runtime._detected_bf16_units.cache_clear()
        return runtime._detected_bf16_units()

    try:
        assert detected({"avx512_bf16"}, set()) == "AVX512_BF16"
        assert detected(set(), {"avx512_bf16"}) == "AVX512_BF16"  # an older torch that does not say
        assert detected({"avx512_bf16", "amx_bf16"}, {"avx512_bf16"}) == "AMX-BF16"
        assert detected(set(), set()) is None
        assert detected({"avx512_bf16", "amx_bf16"}, set(), isa="avx2") is None  # oneDNN told to stay below
        assert detected({"avx512_bf16", "amx_bf16"}, set(), isa="AVX512_CORE") is None
        assert detected({"avx512_bf16", "amx_bf16"}, set(), isa="AVX512_CORE_BF16") == "AVX512_BF16"
        assert detected({"avx512_bf16", "amx_bf16"}, set(), isa="AVX512_CORE_AMX") == "AMX-BF16"
        assert detected({"avx512_bf16"}, set(), isa="DEFAULT") == "AVX512_BF16"
    finally:
        runtime._detected_bf16_units.cache_clear()


def test_a_capped_onednn_is_named_in_the_reason(monkeypatch):
    play_cpu(monkeypatch, None, "AVX512")
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "avx2")
    assert choose_precision("cpu").reason == "cpu AVX512 has no bf16 units oneDNN may use, ONEDNN_MAX_CPU_ISA=AVX2"


def test_this_machine_is_detected_without_error():
    units = runtime.cpu_bf16_units()
    assert units in (None, "AMX-BF16", "AVX512_BF16")
    assert runtime.cpu_bf16_units() == units  # cached
    assert isinstance(runtime.cpu_capability(), str) and runtime.cpu_name()


def test_info_machine_reports_the_choice_of_every_command(monkeypatch):
    play_cpu(monkeypatch, None, "AVX2")
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    runner = CliRunner()
    result = runner.invoke(app, ["info", "--machine", "--json"])
    assert result.exit_code == 0, result.output
    machine = json.loads(result.stdout)["machine"]
    assert machine["cpu"]["capability"] == "AVX2" and machine["cpu"]["bf16_units"] == "none"
    assert machine["cuda"] == [] and machine["device"] == "cpu"
    assert set(machine["commands"]) == {"train", "sample", "inpaint", "desify"}
    for chosen in machine["commands"].values():
        assert chosen == {"device": "cpu", "dtype": "float32", "bf16": False, "reason": "cpu AVX2 has no bf16 units"}
    text = runner.invoke(app, ["info", "--machine"])
    assert text.exit_code == 0, text.output
    assert "commands.sample.reason: cpu AVX2 has no bf16 units" in text.stdout
    assert "cpu.capability: AVX2" in text.stdout


def test_info_without_files_or_machine_is_a_usage_error():
    result = CliRunner().invoke(app, ["info"])
    assert result.exit_code == 2 and "--machine" in result.output


def test_the_precision_is_recorded_in_a_valid_header(tmp_path):
    import numpy as np

    from conftest import assert_fitsverify_clean
    from galgen.io.cube import Cube, read_provenance
    from galgen.io.provenance import make_provenance
    from galgen.io.cube import make_wcs
    from galgen.io.write import write_cube

    chosen = Precision(False, "cpu AVX2 has no bf16 units")
    provenance = make_provenance(command="galgen sample -n 1", bf16=chosen.bf16, precision=str(chosen))
    cube = Cube(data=np.zeros((1, 4, 4), np.float32), bands="r", wcs=make_wcs((4, 4), pixel_scale=0.262))
    path = write_cube(cube, tmp_path / "p.fits", provenance=provenance)
    from astropy.io import fits

    assert fits.getheader(path)["GGPREC"] == "float32 (cpu AVX2 has no bf16 units)"
    assert read_provenance(path) == provenance
    assert_fitsverify_clean(path)
