"""The `b2g-deploy` command: thin typer commands over the library.

Heavy packages (onnxruntime, tensorrt, cv2 video) are imported inside the commands, so
`b2g-deploy --help` stays fast and works without them.

Help is plain text (no rich boxes): it wraps to the terminal and prints whole. A usage error
(an unknown option, a missing argument, a bad value) is one line ``error: ...`` on stderr with
exit code 2, like the commands' own errors (``_common.user_errors``).
"""

from __future__ import annotations

import sys
from typing import Any

import typer
from typer.core import TyperGroup

from .denoise_cmd import denoise_command
from .export_cmd import export_command
from .fit_cmd import fit_command
from .info_cmd import info_command
from .pretrain_cmd import pretrain_command
from .serve_cmd import serve_command

try:  # typer >= 0.2x carries its own copy of click
    from typer._click import exceptions as _click_errors
except ImportError:  # older typer runs on click itself
    from click import exceptions as _click_errors  # type: ignore[no-redef]

# click >= 8.2 raises this (a UsageError) to show the help of a bare `b2g-deploy`; () = none.
_NO_ARGS_HELP = getattr(_click_errors, "NoArgsIsHelpError", ())


def usage_error_line(exc: Any) -> str:
    """``error: <message> (see '<command> --help')`` on one line."""
    message = " ".join(exc.format_message().split())
    ctx = getattr(exc, "ctx", None)
    if isinstance(exc, _click_errors.UsageError) and ctx is not None:
        message = f"{message.rstrip('.')} (see '{ctx.command_path} --help')"
    return f"error: {message}"


class OneLineErrors(TyperGroup):
    """The command group, with click's usage errors turned into one ``error:`` line."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except _NO_ARGS_HELP as exc:  # a bare `b2g-deploy`: its help, as click prints it
            typer.echo(exc.format_message(), err=True)
            sys.exit(exc.exit_code)
        except _click_errors.ClickException as exc:
            print(usage_error_line(exc), file=sys.stderr)
            sys.exit(exc.exit_code)
        except _click_errors.Abort:
            print("error: aborted", file=sys.stderr)
            sys.exit(1)
        # Not standalone, a typer.Exit inside a command comes back as its code; None is success.
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    name="b2g-deploy",
    cls=OneLineErrors,
    help="Zero-shot Blind2Grad denoising: fit on an image or frames, export, denoise video.",
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    add_completion=False,
)
# short_help: the one-line summaries `b2g-deploy --help` lists, whole (click would cut the
# docstrings' first sentences at the terminal width).
app.command("fit", short_help="fit to an image or frames: denoised image + checkpoint")(fit_command)
app.command("export", short_help="checkpoint -> ONNX (and TensorRT), parity-checked")(export_command)
app.command("denoise", short_help="denoise images, folders, video, cameras or streams")(denoise_command)
app.command("info", short_help="runtimes, ONNX Runtime providers, GPU and versions here")(info_command)
app.command("pretrain", short_help="pretrain the prior a fit starts from, on clean photos")(pretrain_command)
app.command("serve", short_help="serve an exported model with NVIDIA Triton (dynamic batching)")(serve_command)


@app.callback()
def _root() -> None:
    """Zero-shot Blind2Grad denoising: fit on an image or frames, export, denoise video."""


def main() -> None:
    app(prog_name="b2g-deploy")  # not guessed from sys.argv[0] (python -m, wrappers)
