"""The scripts under examples/ and the code blocks of the README and the docs run as written."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_the_readme_pipeline_runs_as_written(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "captum_pipeline.py"),
                           str(tmp_path)], capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "predicted: ['tabby', 'espresso']" in out or "predicted:" in out
    for name in ("Adaptive IG", "Left-IG", "Guided IG", "AGI", "IDGI", "Layer IDG"):
        line = next(line for line in out.splitlines() if line.startswith(name))
        assert "finite=True" in line, line
    with Image.open(tmp_path / "heatmap.png") as picture:
        assert picture.size[0] > 300


PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


@pytest.mark.slow
@pytest.mark.parametrize("page", [
    str(page.relative_to(ROOT)) for page in PAGES if "```python" in page.read_text()])
def test_the_code_blocks_run_as_they_stand(page, tmp_path):
    """Every ```python block of the page, in order, in one fresh process each; a
    block whose first line is ``# after: COMMAND`` runs the command first."""
    text = (ROOT / page).read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks
    for block in blocks:
        first = block.splitlines()[0]
        if first.startswith("# after: captum-idg "):
            command = first.removeprefix("# after: captum-idg ").split()
            subprocess.run([sys.executable, "-m", "captum_idg.cli", *command], cwd=tmp_path,
                           check=True, capture_output=True, timeout=600)
        done = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, f"{block}\n{done.stderr}"
