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
