"""Docs and public surface stay true to the code."""
import ast
import re
from pathlib import Path

import pytest

import classifier
from service.cli import cli
from service.config import SETTINGS

ROOT = Path(__file__).resolve().parent.parent


def leaf_commands(group, prefix=""):
    """Every runnable command, subcommands of groups included ("keys create", ...)."""
    for name, command in sorted(group.commands.items()):
        if hasattr(command, "commands"):
            assert command.help, f"group {prefix}{name} needs help text"
            yield from leaf_commands(command, f"{prefix}{name} ")
        else:
            yield f"{prefix}{name}", command


@pytest.mark.parametrize("name, command", list(leaf_commands(cli)))
def test_every_command_has_help_with_an_example(name, command):
    assert command.help and "Example:" in command.help, f"{name} needs help text with an Example: block"


@pytest.mark.parametrize("name", sorted(cli.commands["models"].commands))
def test_every_models_subcommand_has_help_with_an_example(name):
    command = cli.commands["models"].commands[name]
    assert command.help and "Example:" in command.help, f"models {name} needs help text with an Example: block"


def test_exported_members_match_all():
    public = {n for n in dir(classifier) if not n.startswith("_")}
    modules = {n for n in public if type(getattr(classifier, n)).__name__ == "module"}
    assert set(classifier.__all__) == public - modules


def test_no_web_framework_in_classifier():
    for path in (ROOT / "classifier").glob("*.py"):
        tree = ast.parse(path.read_text())
        imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        imported |= {(node.module or "").split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert "flask" not in imported and "werkzeug" not in imported, path
        if not path.name.startswith("cli"):
            assert "click" not in imported, f"{path.name}: only classifier/cli*.py may use click"


def test_every_setting_is_documented():
    doc = (ROOT / "docs" / "configuration.md").read_text()
    for setting in SETTINGS:
        assert f"`POSTSIEVE_{setting.name}`" in doc, f"POSTSIEVE_{setting.name} is not in docs/configuration.md"


def test_readme_quick_start_has_exactly_two_commands():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## Quick start.*?```sh\n(.*?)```", readme, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.split("#")[0].strip()]
    assert commands == ["./run serve", "./run test"]


def test_datacard_counts_match_the_corpus():
    """Every generated table, not only the label totals: a post's kind or category changed, or a
    file added, left the card stale while the three totals still matched."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("datacard", ROOT / "scripts" / "datacard.py")
    datacard = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(datacard)
    card = (ROOT / "training_data" / "DATACARD.md").read_text()
    assert datacard.tables() in card, "training_data/DATACARD.md is stale: run .venv/bin/python scripts/datacard.py"
