"""Every command's ``--help`` reads like a man page: no markup debris, no flag metavars."""

import re

import pytest
from typer.main import get_command

from emoji_batch import errors
from emoji_batch.cli import app
from tests.helpers import run_cli


def command_paths() -> list[list[str]]:
    """Every command of the app (``[]`` is the app itself), so a new one is checked too."""
    paths = []

    def walk(command: object, path: list[str]) -> None:
        paths.append(path)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(get_command(app), [])
    return paths


COMMANDS = command_paths()


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "emoji-batch")
def test_help_is_tidy(
    command: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    assert run_cli([*command, "--help"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("Usage: emoji-batch")
    assert not re.search(r" [.,](\s|$)", text), "a stray space before a period or comma"
    assert "<bool>" not in text, "a flag shown with a value metavar"


@pytest.mark.parametrize("command", [[], ["score"]], ids=["emoji-batch", "score"])
def test_help_lists_every_exit_code(
    command: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    assert run_cli([*command, "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    [sentence] = re.findall(r"Exit codes: (.*?\.)(?: |$)", text)
    assert sentence == errors.EXIT_CODES_HELP.removeprefix("Exit codes: ")
    for meaning in (
        "0 success,",
        "1 runtime failure,",
        "2 bad usage, input or model,",
        "3 output locked by another run,",
        "4 (predict) some texts not scorable,",
        "130 interrupted (Ctrl-C),",
        "141 stdout closed by its reader",
        "143 terminated (SIGTERM).",
    ):
        assert meaning in sentence, meaning
    # Every code the CLI exits with is listed, and nothing else.
    listed = {int(code) for code in re.findall(r"(?:^|, )(\d+) ", sentence)}
    codes = {v for k, v in vars(errors).items() if k.startswith("EXIT_") and isinstance(v, int)}
    assert listed == codes


def is_leaf(path: list[str]) -> bool:
    command = get_command(app)
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    return not hasattr(command, "commands")


LEAVES = [c for c in COMMANDS if is_leaf(c)]


@pytest.mark.parametrize("command", LEAVES, ids=" ".join)
def test_every_command_takes_debug(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """An unexpected failure says "(rerun with --debug)": every command must take it."""
    assert run_cli([*command, "--help"]) == 0
    assert "--debug" in capsys.readouterr().out


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "emoji-batch")
def test_usage_lines_are_tidy(
    command: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    assert run_cli([*command, "--help"]) == 0
    usage = capsys.readouterr().out.splitlines()[0]
    # Typer writes a required argument {NAME} and an optional one [NAME], and adds "..."
    # to one that repeats: a metavar that does so itself doubles them.
    assert not re.search(r"\[\[|\{\{|\.\.\.[]}]", usage), usage
