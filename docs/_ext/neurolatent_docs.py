"""The generated parts of the stage guides, written at every build from the one declaration of each
stage (``neurolatent.pipeline.registry.STAGES``) and of each parameter (``neurolatent.pipeline.params``):

``docs/stages/_generated/<stage>-help.md``  the stage's help, as ``neurolatent <stage> --help`` says it
``docs/stages/_generated/<stage>.md``       the params it reads (their kind, default and meaning) and the
                                            files it reads and writes
``docs/stages/_generated/index.md``         the table of every stage, in the pipeline's order

The folder is git-ignored: nothing generated here is committed, so nothing here can go stale.
"""

from __future__ import annotations

from pathlib import Path

from neurolatent.pipeline.params_docs import table
from neurolatent.pipeline.registry import STAGES

#: what each kind of declared file is, in the words of a reader of the stage's page
KINDS = {"in": "reads", "out": "writes (DVC cache)", "metrics": "writes: the headline metrics (git)",
         "detail": "writes: its metrics (git)", "plots": "writes: tables and figures (git)", "work": "scratch space"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def stage_files(name: str) -> str:
    """A Markdown table of the files a stage reads and writes: path, what it is, reads or writes."""
    stage = STAGES[name]
    rows = ["| path | what | |", "| --- | --- | --- |"]
    for file in stage.files:
        kind = KINDS[file.kind] + (" (optional)" if file.optional else "")
        rows.append(f"| `{file.path}` | {_cell(file.help)} | {kind} |")
    return "\n".join(rows) + "\n"


def stage_page(name: str) -> str:
    """The generated end of a stage's guide: its params and its files."""
    stage = STAGES[name]
    params = (f"`neurolatent {name} --help` lists the same, and `neurolatent {name}` runs the stage alone "
              "(`dvc repro " + name + "` with what it needs).\n\n" + table(stage.params)) if stage.params \
        else "The stage reads no parameter of `params.yaml`.\n"
    return (f"## Its parameters\n\nGenerated from `src/neurolatent/pipeline/params_sections.py` (each declared once) for the "
            f"keys the stage declares in `src/neurolatent/pipeline/registry.py`.\n\n{params}\n"
            f"## Its files\n\nAs `dvc.yaml` lists them (its deps and outs), from the same declaration.\n\n"
            f"{stage_files(name)}")


def stages_table() -> str:
    """Every stage in the pipeline's order, linked to its guide, with its one-line help."""
    rows = ["| stage | what it does |", "| --- | --- |"]
    rows += [f"| [`{name}`]({name}.md) | {_cell(stage.help)} |" for name, stage in STAGES.items()]
    return "\n".join(rows) + "\n"


def write(out: Path) -> None:
    """Write every generated part into ``out``, replacing what a previous build wrote."""
    out.mkdir(parents=True, exist_ok=True)
    for name, stage in STAGES.items():
        (out / f"{name}-help.md").write_text(stage.help + "\n")
        (out / f"{name}.md").write_text(stage_page(name))
    (out / "index.md").write_text(stages_table())


def _on_builder_inited(app) -> None:
    write(Path(app.srcdir) / "stages" / "_generated")


def _skip_metadata_routing(app, what, name, obj, skip, options):
    """scikit-learn adds ``set_fit_request`` and its kin to every estimator class (metadata
    routing); they are its API, documented there, not ours."""
    return True if name.startswith("set_") and name.endswith("_request") else None


def setup(app):
    """Sphinx's entry point: write the generated parts before the sources are read."""
    app.connect("builder-inited", _on_builder_inited)
    app.connect("autodoc-skip-member", _skip_metadata_routing)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
