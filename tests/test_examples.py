"""The scripts under examples/ run as written."""

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
