"""Shared fixtures: the labelled corpus written once as a package and analysed once."""

from __future__ import annotations

from pathlib import Path

import pytest
from pattern_corpus import CORPUS

from elixirscope.analysis import open_repository


def write_corpus(root: Path) -> Path:
    package = root / "corpus"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    for name, (source, _expected) in CORPUS.items():
        (package / f"{name}.py").write_text(source)
    return package


@pytest.fixture(scope="module")
def analysed_corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    package = write_corpus(root / "src")
    repo = open_repository(root / "data")
    summary = repo.analyze(str(package))
    yield repo, summary, package
    repo.close()
