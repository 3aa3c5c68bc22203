"""Which torch device a command runs on."""

from __future__ import annotations

from .errors import InputError


def resolve_device(name: str) -> str:
    """``auto`` is CUDA when there is a GPU, else the CPU; ``cuda`` without a GPU is an error."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name != "cpu" and not (name == "cuda" or (name.startswith("cuda:") and name[5:].isdigit())):
        raise InputError(f"unknown device '{name}'; use cpu, cuda, cuda:N or auto")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"--device {name} was asked for but no CUDA GPU is available here")
    return name


def bf16_is_fast(device: str) -> bool:
    """Whether bfloat16 autocast speeds training up here: a CUDA GPU with bf16 support, or a CPU
    with native bf16 instructions (AVX512-BF16 or AMX). Elsewhere PyTorch emulates bf16 and a fit
    would run slower, so a config's ``bf16`` is then ignored."""
    import torch

    kind = torch.device(device).type
    if kind == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if kind != "cpu":
        return False
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:  # not Linux: no cheap way to tell, so stay in float32
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags
