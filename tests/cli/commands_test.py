"""setup.py's console scripts resolve to the commands of `uaf_tf.cli`."""

import ast
import importlib
import os

from uaf_tf.cli import commands

REPO = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


def _console_scripts() -> dict[str, str]:
    """`{command: "module:function"}` from setup.py, read without running
    it."""
    with open(os.path.join(REPO, "setup.py")) as f:
        tree = ast.parse(f.read())
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "entry_points":
            entry_points = ast.literal_eval(node.value)
    scripts = entry_points["console_scripts"]
    return dict(script.split("=", 1) for script in scripts)


def test_console_scripts_resolve_to_callables():
    scripts = _console_scripts()
    assert (
        set(scripts)
        == set(commands.COMMANDS)
        == {
            "uaf-prepare-data",
            "uaf-pretrain",
            "uaf-finetune",
            "uaf-export",
            "uaf-reproduce",
            "uaf-profile",
        }
    )
    for name, target in scripts.items():
        module_name, function_name = target.split(":")
        function = getattr(importlib.import_module(module_name), function_name)
        assert callable(function), name
        # The function runs the module COMMANDS names for the script.
        assert function.__name__ == commands.COMMANDS[name], name


def test_every_command_module_has_the_command_api():
    for module_name in commands.COMMANDS.values():
        module = importlib.import_module(f"uaf_tf.cli.{module_name}")
        for attribute in ("define_flags", "run", "main", "entry_point"):
            assert callable(getattr(module, attribute)), attribute


def test_launch_scripts_are_thin_wrappers():
    for module_name in commands.COMMANDS.values():
        with open(os.path.join(REPO, "launch", f"{module_name}.py")) as f:
            source = f.read()
        assert f"commands.{module_name}()" in source
        assert len(source.splitlines()) <= 10
