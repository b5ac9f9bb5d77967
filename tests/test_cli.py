"""The `emgjax` dispatcher: help, version, unknown commands, and every subcommand's --help."""

import re

import pytest

from emgjax import __version__
from emgjax.cli import SUBCOMMANDS, main, run_command


def test_help_lists_every_command(capsys):
    # The commands the README documents, spelled out (not read back from SUBCOMMANDS, which builds the text).
    assert set(SUBCOMMANDS) == {"convert", "synth", "demo", "stream", "record", "check", "label", "calibrate"}
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("convert", "synth", "demo", "stream", "record", "check", "label", "calibrate"):
        assert re.search(rf"^  {name} +\S", out, re.MULTILINE), out


def test_version(capsys):
    assert main(["--version"]) == 0
    printed = capsys.readouterr().out.strip()
    assert re.fullmatch(r"\d+\.\d+(\.\d+)?\S*", printed) and printed == __version__


def test_run_command_turns_user_errors_into_one_line(capsys):
    def fail(error):
        def body():
            raise error

        return body

    assert run_command("prog", lambda: None) == 0 and run_command("prog", lambda: 3) == 3
    assert run_command("prog", fail(ValueError("expected x,\n  found y"))) == 2
    assert capsys.readouterr().err == "prog: error: expected x, found y\n"
    assert run_command("prog", fail(FileNotFoundError(2, "No such file or directory", "/nope"))) == 2
    assert capsys.readouterr().err == "prog: error: [Errno 2] No such file or directory: '/nope'\n"
    assert run_command("prog", fail(KeyboardInterrupt())) == 130
    with pytest.raises(TypeError):  # a programming error keeps its traceback
        run_command("prog", fail(TypeError("bug")))


def test_unknown_command_is_an_error_naming_the_choices(capsys):
    assert main(["train-everything"]) == 2
    err = capsys.readouterr().err
    assert "unknown command 'train-everything'" in err and "convert" in err


@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_each_subcommand_has_help(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([name, "--help"])
    assert exit_info.value.code == 0
    assert f"emgjax {name}" in capsys.readouterr().out
