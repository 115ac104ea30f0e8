"""The wheel: builds without deprecation warnings, carries its data and license, and
its command runs from an install outside the source tree."""

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_builds_cleanly_and_its_command_runs_outside_the_tree(tmp_path):
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-v",
                            "-w", str(tmp_path / "dist")], capture_output=True, text=True,
                           timeout=600)
    assert built.returncode == 0, built.stderr[-3000:]
    log = built.stdout + built.stderr
    assert "DeprecationWarning" not in log and "deprecated" not in log.lower(), [
        line for line in log.splitlines() if "eprecat" in line]
    wheel = next((tmp_path / "dist").glob("captum_idg-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "captum_idg/evaluation/imagenet_synsets.txt" in names
    assert any(name.endswith("licenses/LICENSE") for name in names)
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "venv")], check=True)
    python = tmp_path / "venv" / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)],
                   check=True, timeout=300)
    helped = subprocess.run([str(tmp_path / "venv" / "bin" / "captum-idg"), "--help"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert helped.returncode == 0 and "captum-idg attribute" in helped.stdout, helped.stderr
