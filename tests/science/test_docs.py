"""The shared parameter text: a placeholder line takes its entry, indented as the placeholder; an
unknown name fails at import; and no public docstring of the library keeps a placeholder."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import neurolatent.io
import neurolatent.models
import neurolatent.science
from neurolatent.science._docs import _PLACEHOLDER, DOCS, fill_doc


def test_a_placeholder_takes_its_entry_indented_as_it_is():
    @fill_doc
    def f(permutations):
        """Do it.

        Parameters
        ----------
        %(permutations)s
        """

    lines = DOCS["permutations"].splitlines()
    assert f"\n        {lines[0]}\n        {lines[1]}\n" in f.__doc__
    assert "%(" not in f.__doc__


def test_an_unknown_name_is_a_key_error():
    def f():
        """%(no_such_parameter)s"""

    with pytest.raises(KeyError, match="no_such_parameter"):
        fill_doc(f)


def test_every_entry_is_numpydoc_name_kind_then_indented_text():
    for name, entry in DOCS.items():
        first, *rest = entry.splitlines()
        assert " : " in first and rest, name
        assert all(line.startswith("    ") or " : " in line for line in rest), name


def _library_callables():
    for package in (neurolatent.science, neurolatent.io, neurolatent.models):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            module = importlib.import_module(info.name)
            for name, thing in vars(module).items():
                if not name.startswith("_") and getattr(thing, "__module__", None) == info.name and callable(thing):
                    yield f"{info.name}.{name}", thing


def test_no_library_docstring_keeps_a_placeholder():
    kept = [name for name, thing in _library_callables() if _PLACEHOLDER.search(inspect.getdoc(thing) or "")]
    assert kept == []
