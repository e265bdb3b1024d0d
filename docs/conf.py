"""Sphinx configuration of neurolatent's documentation site (``make docs``: docs/_build/html).

Built offline with warnings as errors: no intersphinx, no remote images. The pages are Markdown
(myst-parser) beside the generated parts: each stage's params and files from the one declaration
(pipeline/params_sections.py, pipeline/registry.py, written to docs/stages/_generated/ at every build), the
API reference from the docstrings (autosummary, numpydoc), and the gallery (sphinx-gallery, from
examples/).
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))

project = "neurolatent"
author = "the neurolatent authors"
copyright = "the neurolatent authors"  # noqa: A001 - Sphinx's name
release = "0.1.0"

templates_path = ["_templates"]
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
    "neurolatent_docs",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "stages/_generated", "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "auto_examples/*.md5", "auto_examples/*.codeobj.json"]
myst_heading_anchors = 3

# API reference: one page per module, generated from the package's docstrings
autosummary_generate = True
autodoc_default_options = {"members": True}
autodoc_typehints = "none"
autodoc_member_order = "bysource"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
# The docstrings are numpydoc where they have sections, plain prose elsewhere (a sentence saying
# shapes and units); numpydoc's validation (GL01, SA01, ES01, ...) would demand sections of every
# one. What is checked: every docstring parses (warnings are errors).
numpydoc_validation_checks: set[str] = set()
numpydoc_xref_param_type = False

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "reference_url": {},
    "plot_gallery": "True",
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
}

html_theme = "pydata_sphinx_theme"
html_title = "neurolatent"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "navbar_align": "left",
    "header_links_before_dropdown": 8,
    # the stage guides' parameter tables need the width of the page more than a table of contents
    "secondary_sidebar_items": {"*": ["page-toc"], "generated/*": ["page-toc"], "auto_examples/*": ["page-toc"],
                                "stages/*": []},
    "footer_start": ["copyright"],
    "footer_end": [],
}
html_sidebars = {"index": [], "results": [], "getting-started": []}
html_static_path = ["_static"]
html_css_files = ["neurolatent.css"]
html_show_sourcelink = False
