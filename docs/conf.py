"""Sphinx configuration for the skrecordpair documentation.

Build (offline, warnings as errors)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

Nothing here trains a model or downloads anything: examples are literal code
blocks, and ``intersphinx_mapping`` is left empty on purpose.
"""

import os
import re
import sys

# Document the working tree, also when the package is not installed.
sys.path.insert(0, os.path.abspath(".."))

import skrecordpair

project = "skrecordpair"
author = "The skrecordpair developers"
copyright = "The skrecordpair developers"
version = skrecordpair.__version__
release = skrecordpair.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
root_doc = "index"
default_role = "literal"
# Parameter defaults such as default="left_" must keep their straight quotes.
smartquotes = False

# -- autodoc / autosummary ---------------------------------------------------
autosummary_generate = True
autosummary_imported_members = False
# The templates _templates/class.rst and _templates/function.rst (named with
# :template: in api.rst) choose the documented members explicitly.
autodoc_default_options = {}
autodoc_typehints = "none"

# -- numpydoc ----------------------------------------------------------------
# The class template lists the methods itself: without this, numpydoc adds a
# second members table and Sphinx warns about duplicate object descriptions.
numpydoc_show_class_members = False
numpydoc_show_inherited_class_members = False
numpydoc_class_members_toctree = False
# Keep parameter types as plain text: no cross-reference targets are needed
# offline, and unresolved ones would be noise.
numpydoc_xref_param_type = False
numpydoc_attributes_as_param_list = True

# -- intersphinx -------------------------------------------------------------
# Deliberately empty: the build must work without network access.
intersphinx_mapping = {}

# -- HTML --------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skrecordpair {release}"
html_static_path = ["_static"]
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_sidebars = {"install": [], "datasets": []}
html_show_sourcelink = False


# -- docstring fix-ups ---------------------------------------------------------
# In reST a word followed by "_" is a hyperlink reference, so parameter types
# such as ``str, default="left_"`` or ``ndarray of shape (n_features_in_,)``
# would fail the build ("Unknown target name"). Escape a trailing underscore in
# the *type* part of numpydoc "name : type" lines before numpydoc renders them;
# nothing else in the docstrings is touched.
_PARAM_LINE = re.compile(r"^(\s*[\w*, ]+ : )(.*)$")
_TRAILING_UNDERSCORE = re.compile(r"(?<=\w)_(?=[\"',)\]\s]|$)")


def _escape_type_underscores(app, what, name, obj, options, lines):
    for i, line in enumerate(lines):
        match = _PARAM_LINE.match(line)
        if match and "`" not in match.group(2):
            lines[i] = match.group(1) + _TRAILING_UNDERSCORE.sub(r"\\_", match.group(2))


def setup(app):
    # Lower priority numbers run first: before numpydoc (priority 500).
    app.connect("autodoc-process-docstring", _escape_type_underscores, priority=100)
