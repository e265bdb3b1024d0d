"""The package's own source: a module's import closure read from disk (lazy and ``from`` imports
included, package ``__init__`` files left out) and the digest that changes with it."""

from __future__ import annotations

from pathlib import Path

import pytest

from neurolatent.pipeline.source import import_closure, source_digest


def test_the_closure_of_a_library_module():
    closure = import_closure("neurolatent.science.identification")
    assert closure == [Path(f"src/neurolatent/science/{name}.py")
                       for name in ("_docs", "constraints", "identification", "stats")]


def test_an_unknown_module_is_named():
    with pytest.raises(ValueError, match="neurolatent.science.nothing: no such neurolatent module"):
        import_closure("neurolatent.science.nothing")


def test_the_digest_is_sixteen_hex_characters_and_follows_the_closure():
    digest = source_digest("neurolatent.science.identification")
    assert len(digest) == 16 and int(digest, 16) >= 0
    assert digest == source_digest("neurolatent.science.identification")
    assert digest != source_digest("neurolatent.science.stats")
