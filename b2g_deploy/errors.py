"""Exception types. Anything derived from B2GError is the user's mistake or an
environment problem: the CLI prints its message on one line and exits with code 2."""


class B2GError(Exception):
    """Base class: a clear, user-facing error (no traceback in the CLI)."""


class InputError(B2GError):
    """An input file or argument is missing, unreadable or unsupported."""


class OutputExistsError(B2GError):
    """An output path exists and --force was not given."""


class CheckpointError(B2GError):
    """A checkpoint is not ours, is corrupt, or does not match the input."""


class MissingPackageError(B2GError):
    """An optional package is not installed; the message names the pip extra."""

    def __init__(self, module: str, extra: str):
        super().__init__(
            f"the optional package '{module}' is not installed: pip install 'b2g-deploy[{extra}]'"
        )
        self.module = module
        self.extra = extra


class ParityError(B2GError):
    """An exported model does not reproduce PyTorch within tolerance."""


class EngineMismatchError(B2GError):
    """A TensorRT engine was built for another TensorRT version, GPU or shape profile."""


class EngineBuildError(B2GError):
    """TensorRT could not parse the ONNX model or build an engine from it."""
