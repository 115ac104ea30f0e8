"""Sphinx configuration of the captum-idg site.

Build from the repository root, so that the notebooks are pages of the site:

    sphinx-build -W -c docs . build/site
"""

import captum_idg

project = "captum-idg"
author = "the captum-idg developers"
release = version = captum_idg.__version__
copyright = "2026, the captum-idg developers"

extensions = ["myst_nb", "sphinx.ext.autodoc", "sphinx.ext.napoleon",
              "sphinx.ext.mathjax"]
root_doc = "docs/index"
include_patterns = ["docs/**", "notebooks/*.ipynb"]
exclude_patterns = ["build", ".venv", "docs/_root", "**/.ipynb_checkpoints"]
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb"}

nb_execution_mode = "off"  # CI executes the notebooks; the site shows their stored outputs
myst_heading_anchors = 3
myst_enable_extensions = ["dollarmath"]
suppress_warnings = ["mystnb.unknown_mime_type"]  # widget state in stored outputs

autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "undoc-members": True, "show-inheritance": True}
autodoc_typehints = "description"
napoleon_google_docstring = True
napoleon_numpy_docstring = False

html_theme = "sphinx_rtd_theme"
html_title = f"captum-idg {release}"
html_extra_path = ["_root"]  # index.html at the site's root, which opens docs/index.html
