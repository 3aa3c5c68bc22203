"""The `b2g-deploy` command: thin typer commands over the library.

Heavy packages (onnxruntime, tensorrt, cv2 video) are imported inside the commands, so
`b2g-deploy --help` stays fast and works without them.
"""

from __future__ import annotations

import typer

from .denoise_cmd import denoise_command
from .export_cmd import export_command
from .fit_cmd import fit_command
from .info_cmd import info_command
from .pretrain_cmd import pretrain_command

app = typer.Typer(
    name="b2g-deploy",
    help="Zero-shot Blind2Grad denoising: fit on an image or frames, export, denoise video.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("fit")(fit_command)
app.command("export")(export_command)
app.command("denoise")(denoise_command)
app.command("info")(info_command)
app.command("pretrain")(pretrain_command)


@app.callback()
def _root() -> None:
    """Zero-shot Blind2Grad denoising: fit on an image or frames, export, denoise video."""


def main() -> None:
    app()
