"""The machine a measurement ran on, as studies and evaluations record it."""

import os

import torch

from fastddgan._machine import cpu_name, machine_label


def test_machine_label_names_the_cpu_its_instructions_amx_and_cores(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+\n"
                    "flags\t\t: fpu avx2 avx512f amx_bf16 amx_tile amx_int8\n")
    label = machine_label("cpu", cpuinfo=str(info))
    cores = os.cpu_count()
    capability = torch.backends.cpu.get_cpu_capability()
    assert label == f"Intel(R) Xeon(R) Platinum 8480+ ({capability}, AMX, {cores} core{'s' if cores != 1 else ''})"
    info.write_text("model name\t: AMD EPYC\nflags\t\t: fpu avx2 amx_bf16\n")  # amx_bf16 alone is no tile unit
    assert machine_label(None, cpuinfo=str(info)).startswith(f"AMD EPYC ({capability}, {cores} core")
    assert cpu_name(str(tmp_path / "missing")) != ""  # no /proc/cpuinfo: platform's name, or "unknown CPU"
