"""The public surface of elixirscope.console is exactly what __all__ says."""

from __future__ import annotations

import argparse

import elixirscope.console as console


def test_exports():
    assert sorted(console.__all__) == sorted(
        [
            "COMMANDS",
            "DEFAULT_ENDPOINT",
            "DEFAULT_TIMEOUT",
            "EXIT_ERROR",
            "EXIT_OK",
            "EXIT_UNREACHABLE",
            "EXIT_USAGE",
            "LocalCommand",
            "Session",
            "UsageError",
            "add_arguments",
            "parse_command",
            "run",
        ]
    )
    for name in console.__all__:
        assert getattr(console, name) is not None


def test_add_arguments_leaves_a_parent_parsers_command_dest_alone():
    """cli.py dispatches on args.command; -c must not overwrite it."""
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    console.add_arguments(sub.add_parser("console"))
    args = parser.parse_args(["console", "-c", "status", "--json", "--timeout", "1.5"])
    assert (args.command, args.one_shot, args.json, args.timeout) == (
        "console",
        "status",
        True,
        1.5,
    )
    assert args.connect == console.DEFAULT_ENDPOINT
