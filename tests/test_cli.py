"""The `emgjax` dispatcher: help, version, unknown commands, and every subcommand's --help."""

import pytest

from emgjax import __version__
from emgjax.cli import SUBCOMMANDS, main


def test_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in SUBCOMMANDS:
        assert name in out


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == __version__


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
