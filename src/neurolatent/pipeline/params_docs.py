"""The parameters' declarations in words: ``neurolatent <stage> --help``'s lines (:func:`explain`)
and docs/params.md (:func:`reference`; ``python -m neurolatent.pipeline.params_docs --write``), each
parameter's kind and bounds read from its pydantic declaration in :mod:`neurolatent.pipeline.params`.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from neurolatent.pipeline.params import Params


def _bounds(metadata: list) -> dict[str, Any]:
    """The tightest of each bound in pydantic metadata (nested Field(...) included): {"ge": 1, ...}."""
    found: dict[str, Any] = {}
    for item in metadata:
        if isinstance(item, FieldInfo):
            for name, value in _bounds(item.metadata).items():
                found[name] = value if name not in found else (max if name in ("ge", "gt", "min_length") else min)(
                    found[name], value)
        for kind, name in ((Ge, "ge"), (Gt, "gt"), (Le, "le"), (Lt, "lt"), (MinLen, "min_length"),
                           (MaxLen, "max_length")):
            if isinstance(item, kind):
                value = getattr(item, dataclasses.fields(item)[0].name)
                keep = max if name in ("ge", "gt", "min_length") else min
                found[name] = value if name not in found else keep(found[name], value)
    return found


def _number(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and abs(value) >= 10_000 else str(value)


def _bound_words(bounds: dict[str, Any]) -> list[str]:
    low = (">= " + _number(bounds["ge"])) if "ge" in bounds else ("> " + _number(bounds["gt"])) if "gt" in bounds else ""
    high = (("<= " + _number(bounds["le"])) if "le" in bounds else ("< " + _number(bounds["lt"])) if "lt" in bounds
            else "")
    words = [" and ".join(w for w in (low, high) if w)] if low or high else []
    if "min_length" in bounds:
        words.append(f"at least {bounds['min_length']} entries")
    if "max_length" in bounds:
        words.append(f"at most {bounds['max_length']} entries")
    return words


def _kind(annotation: Any, metadata: list | None = None) -> str:
    """A type annotation as words: ``integer >= 1, <= 1,000,000``, ``one of spearman | pearson``."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Annotated:
        return _kind(args[0], [*args[1:], *(metadata or [])])
    bounds = _bound_words(_bounds(metadata or []))
    if origin is Literal:
        text = "one of " + " | ".join(str(a) for a in args)
    elif origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        text = " or ".join(_kind(a) for a in options) + (", or null" if len(options) < len(args) else "")
    elif origin is list:
        text = f"list of ({_kind(args[0])})"
    elif origin is dict:
        text = f"a mapping of ({_kind(args[0])}) to ({_kind(args[1])})"
    elif origin is tuple:
        text = f"a pair [{', '.join(_kind(a) for a in args)}]" if len(set(args)) == 1 and len(args) == 2 \
            else f"[{', '.join(_kind(a) for a in args)}]"
    else:
        text = {int: "integer", float: "number", bool: "true | false", str: "text"}.get(annotation, str(annotation))
    return ", ".join([text, *bounds])


def leaves(model: type[BaseModel] = Params, prefix: str = "") -> list[tuple[str, Any]]:
    """Every parameter (not a section) under ``model``: (dotted key, its pydantic FieldInfo)."""
    out = []
    for name, field in model.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            out += leaves(field.annotation, f"{prefix}{name}.")
        else:
            out.append((f"{prefix}{name}", field))
    return out


def _default(field: Any) -> str:
    return yaml.safe_dump(field.default, default_flow_style=True, width=1000).strip().removesuffix("...").strip()


def _under(keys: tuple[str, ...]) -> list[tuple[str, Any]]:
    """The parameters under ``keys`` (whole sections or dotted keys), in declaration order."""
    return [(key, field) for key, field in leaves() if any(key == k or key.startswith(k + ".") for k in keys)]


def explain(keys: tuple[str, ...]) -> list[str]:
    """One line per parameter under ``keys`` (whole sections or dotted keys): ``key (kind, default
    value): explanation``; what ``neurolatent <stage> --help`` lists."""
    return [f"{key} ({_kind(field.annotation, field.metadata)}; default {_default(field)}): {field.description}"
            for key, field in _under(keys)]


def _row(key: str, field: Any) -> str:
    cells = [f"`{key}`", _kind(field.annotation, field.metadata), f"`{_default(field)}`", field.description or ""]
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


TABLE_HEAD = ["| key | kind | default | what it is |", "| --- | --- | --- | --- |"]


def table(keys: tuple[str, ...]) -> str:
    """A Markdown table of the parameters under ``keys`` (whole sections or dotted keys, as a stage
    declares them in the registry): the documentation site's table of what one stage reads."""
    return "\n".join([*TABLE_HEAD, *(_row(key, field) for key, field in _under(keys))]) + "\n"


def reference() -> str:
    """docs/params.md: every section of params.yaml, each parameter with its kind and bounds, default
    and explanation (written by ``python -m neurolatent.pipeline.params_docs --write``; tested current)."""
    lines = ["# params.yaml, every parameter", "",
             "Generated from `src/neurolatent/pipeline/params_sections.py`, where each parameter is declared once "
             "(`python -m neurolatent.pipeline.params_docs --write`). `neurolatent <stage> --help` lists the ones "
             "a stage reads.", ""]
    section = None
    for key, field in leaves():
        top = key.rsplit(".", 1)[0]
        if top != section:
            section = top
            model: Any = Params
            for part in top.split("."):
                model = model.model_fields[part].annotation
            lines += ["", f"## `{top}`", "", (model.__doc__ or "").strip(), "", *TABLE_HEAD]
        lines.append(_row(key, field))
    return "\n".join(lines).replace("\n\n\n", "\n\n") + "\n"


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Print (or --write) docs/params.md from the declarations.")
    parser.add_argument("--write", action="store_true", help="write docs/params.md in the cwd")
    parser.add_argument("--keys", nargs="+", metavar="KEY",
                        help="print only the table of these sections or dotted keys (a stage's, as the docs show it)")
    args = parser.parse_args()
    if args.keys:
        print(table(tuple(args.keys)), end="")
    elif args.write:
        Path("docs/params.md").write_text(reference())
    else:
        print(reference(), end="")
