"""The README's cinema section prints what ``elixirscope ui`` prints (its port and token
aside), and the screenshots it shows are in the repository."""

from __future__ import annotations

import re
from pathlib import Path

from cinema_recordings import UiServer

README = Path(__file__).resolve().parents[2] / "README.md"


def _section() -> str:
    text = README.read_text()
    start = text.index("## The cinema: ElixirScope in the browser")
    return text[start : text.index("\n## ", start + 1)]


def _same(text: str) -> str:
    return re.sub(r"127\.0\.0\.1:\d+/\?token=\S+", "127.0.0.1:PORT/?token=TOKEN", text)


def test_the_readme_shows_what_elixirscope_ui_prints(cinema_data, tmp_path):
    block = re.search(r"```\n\$ elixirscope ui --data-dir data\n(.*?)```", _section(), re.S)
    assert block is not None
    data = tmp_path / "data"
    data.symlink_to(cinema_data)
    ui = UiServer(Path("data"), cwd=tmp_path)  # the command names its data dir as given
    try:
        printed = ui.printed + ui.proc.stdout.readline()  # type: ignore[union-attr]
    finally:
        ui.close()
    assert _same(printed) == _same(block.group(1))


def test_the_screenshots_are_in_the_repository():
    for picture in re.findall(r"\]\((docs/screenshots/[^)]+\.png)\)", _section()):
        assert (README.parent / picture).stat().st_size > 10_000, picture
