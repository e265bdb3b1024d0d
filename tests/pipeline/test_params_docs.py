"""The parameters in words: each one's kind and bounds read from its declaration (``--help``'s
lines), and docs/params.md's sections and rows."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from neurolatent.pipeline.params_docs import _kind, explain, leaves, reference
from neurolatent.science.constraints import Count, Fraction


def test_kinds_and_bounds_in_words():
    assert _kind(Annotated[Count, Field(le=1_000_000)]) == "integer, >= 1 and <= 1,000,000"
    assert _kind(Fraction) == "number, > 0 and < 1"
    assert _kind(Literal["pearson", "spearman"]) == "one of pearson | spearman"
    assert _kind(list[int] | None) == "list of (integer), or null"
    assert _kind(tuple[float, float]) == "a pair [number, number]"


def test_explain_lists_a_sections_params_with_kind_default_and_text():
    lines = explain(("rsa.permutations", "rsa.ci"))
    assert lines[0].startswith("rsa.permutations (integer, >= 1 and <= 1,000,000; default 10000): Stimulus-label")
    assert lines[1] == "rsa.ci (number, > 0 and < 1; default 0.95): The confidence intervals' level."
    assert len(explain(("rsa",))) == sum(key.startswith("rsa.") for key, _ in leaves())


def test_the_reference_has_a_table_per_section():
    text = reference()
    assert text.startswith("# params.yaml, every parameter\n")
    assert "## `rsa`" in text and "## `data.synthetic`" in text
    assert "| `rsa.ci` | number, > 0 and < 1 | `0.95` | The confidence intervals' level. |" in text
    assert text.count("| key | kind | default | what it is |") == len({k.rsplit(".", 1)[0] for k, _ in leaves()})
