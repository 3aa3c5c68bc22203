"""Usage errors are one `error:` line with exit code 2 (no rich boxes); help prints whole."""

from __future__ import annotations

import sys

import pytest
from typer.testing import CliRunner

from b2g_deploy.cli import app, main

runner = CliRunner()


def run_main(monkeypatch, capsys, *args) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["b2g-deploy", *args])
    with pytest.raises(SystemExit) as done:
        main()
    out = capsys.readouterr()
    return done.value.code, out.out, out.err


@pytest.mark.parametrize("args, words", [
    (["denoise", "x.png", "--bogus"], "No such option: --bogus"),
    (["denoise", "x.png"], "Missing option '-o' / '--output'"),
    (["denoise", "x.png", "-o", "y.png", "--batch", "many"], "'--batch'"),
    (["export"], "Missing argument"),
    (["frobnicate"], "No such command 'frobnicate'"),
])
def test_usage_errors_are_one_line(monkeypatch, capsys, args, words):
    code, out, err = run_main(monkeypatch, capsys, *args)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], err
    assert "--help" in lines[0] and "╭" not in err
    # The same through typer's test runner (what the other CLI tests use).
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and result.output.strip() == lines[0]


def test_success_and_command_exit_codes_pass_through(monkeypatch, capsys, tmp_path):
    code, out, _ = run_main(monkeypatch, capsys, "info")
    assert code == 0 and "runtimes:" in out
    code, _, err = run_main(monkeypatch, capsys, "denoise", str(tmp_path / "missing.png"), "-m",
                            str(tmp_path / "m.pt"), "-o", str(tmp_path / "o.png"))
    assert code == 2 and err.strip().startswith("error: ") and len(err.strip().splitlines()) == 1


def test_help_is_plain_and_whole(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = run_main(monkeypatch, capsys, "export", "--help")
    assert code == 0 and "╭" not in out
    text = " ".join(out.split())
    assert "checked on a real image after every export, and a failed check writes nothing." in text
    assert "--force overwrite existing outputs" in text and "<bool>" not in out
    code, out, _ = run_main(monkeypatch, capsys, "--help")
    assert code == 0 and "..." not in out.split("Commands:")[1]
    for name in ("fit", "export", "denoise", "info", "pretrain"):
        assert f"\n  {name} " in out
