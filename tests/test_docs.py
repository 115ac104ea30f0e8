"""The documentation site: it builds offline with warnings as errors, no internal link or
image is broken, and every public class and function has an API entry."""

import importlib
import inspect
import pkgutil
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from tests.oracles import oracle

ROOT = Path(__file__).resolve().parent.parent

oracle("sphinx")
oracle("myst_nb")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-c", "docs", ".", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return out


class Links(HTMLParser):
    """The ``href`` and ``src`` of a page, and the ids it defines."""

    def __init__(self) -> None:
        super().__init__()
        self.links, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        for name in ("href", "src"):
            if attrs.get(name):
                self.links.append((tag, attrs[name]))


def parse(page: Path) -> Links:
    links = Links()
    links.feed(page.read_text(encoding="utf-8"))
    return links


def test_no_internal_link_or_image_is_broken(site):
    pages = {page: parse(page) for page in site.rglob("*.html")}
    assert len(pages) > 20
    broken = []
    for page, links in pages.items():
        for tag, link in links.links:
            parts = urlsplit(link)
            if parts.scheme or link.startswith("//") or link.startswith("mailto:"):
                continue  # external: not this site's to check offline
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            if not target.exists():
                broken.append(f"{page.relative_to(site)}: <{tag}> {link}")
            elif parts.fragment and target.suffix == ".html" and target in pages \
                    and parts.fragment not in pages[target].ids:
                broken.append(f"{page.relative_to(site)}: <{tag}> {link} (no such anchor)")
    assert not broken, "\n".join(broken[:20])


def public_names():
    """``module.name`` of every public class and function: those ``captum_idg``,
    ``captum_idg.metrics`` and ``captum_idg.evaluation`` export, and those the
    modules of ``captum_idg.evaluation`` define."""
    names = {f"captum_idg.attr.{n}" for n in importlib.import_module("captum_idg.attr").__all__}
    paths = importlib.import_module("captum_idg.paths")
    names |= {f"captum_idg.paths.{n}" for n in paths.__all__
              if inspect.isclass(getattr(paths, n)) or inspect.isfunction(getattr(paths, n))}
    names |= {f"captum_idg.metrics.{n}"
              for n in importlib.import_module("captum_idg.metrics").__all__}
    evaluation = importlib.import_module("captum_idg.evaluation")
    names |= {f"captum_idg.evaluation.{n}" for n in evaluation.__all__}
    for module_info in pkgutil.iter_modules(evaluation.__path__):
        module = importlib.import_module(f"captum_idg.evaluation.{module_info.name}")
        for name, value in vars(module).items():
            if (not name.startswith("_") and (inspect.isclass(value) or inspect.isfunction(value))
                    and value.__module__ == module.__name__):
                names.add(f"{module.__name__}.{name}")
    for module in ("captum_idg.baselines", "captum_idg.visualization"):
        names |= {f"{module}.{n}" for n, v in vars(importlib.import_module(module)).items()
                  if not n.startswith("_") and inspect.isfunction(v) and v.__module__ == module}
    return names


def test_every_public_class_and_function_has_an_api_entry(site):
    ids = set()
    for page in (site / "docs" / "api").glob("*.html"):
        ids |= parse(page).ids
    names = public_names()
    assert {"captum_idg.attr.IntegratedDecisionGradients", "captum_idg.metrics.insertion",
            "captum_idg.evaluation.read_attribution", "captum_idg.evaluation.pipeline.run",
            "captum_idg.baselines.dinucleotide_shuffle"} <= names
    missing = sorted(names - ids)
    assert not missing, missing


def test_the_api_shows_the_filled_in_docstrings(site):
    page = (site / "docs" / "api" / "attribution.html").read_text(encoding="utf-8")
    assert "Input for which attributions" in page  # the shared {inputs} text, filled in
    assert not re.search(r"\{(inputs|baselines|target|method)\}", page)


def test_the_notebooks_are_rendered_with_their_outputs(site):
    page = (site / "notebooks" / "genomics.html").read_text(encoding="utf-8")
    assert "share of |attribution| on the motif" in page and "<img" in page
