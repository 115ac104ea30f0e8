"""The command line end to end: explain (demo and files), benchmark, merge, errors."""

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "captum_idg.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=900)


def assert_png(path):
    with Image.open(path) as picture:
        pixels = np.asarray(picture)
    assert picture.format == "PNG" and pixels.shape[1] > 500 and pixels.std() > 10


def test_explain_demo_end_to_end(tmp_path):
    done = run("explain", "--demo", "--methods", "idg", "--n-steps", "4", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 6
    assert any("espresso" in line for line in lines if line.startswith("coffee:"))
    for name in ("chelsea", "coffee", "rocket", "motorcycle_left", "motorcycle_right",
                 "astronaut"):
        assert_png(tmp_path / f"{name}.png")


def test_explain_reports_bad_files_and_goes_on(tmp_path):
    import skimage.data

    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(skimage.data.coffee()).save(photos / "cup.jpg")
    Image.fromarray(skimage.data.camera()).save(photos / "gray.png")
    Image.fromarray(np.dstack([skimage.data.coffee()] + [skimage.data.coffee()[..., :1]])).save(
        photos / "rgba.png")
    (photos / "notes.png").write_text("not an image")
    done = run("explain", str(photos), str(tmp_path / "missing.jpg"), "--methods", "saliency",
               "--out", str(tmp_path / "out"))
    assert done.returncode == 2
    errors = done.stderr.strip().splitlines()
    assert len(errors) == 4 and all(e.startswith("captum-idg: error:") for e in errors)
    assert done.stdout.startswith("cup: espresso")
    assert_png(tmp_path / "out" / "cup.png")


@pytest.mark.parametrize("args, message", [
    (["--demo", "--methods", "idg,lime"], "unknown method 'lime'"),
    (["--demo", "--model", "vgg"], "unknown model 'vgg'"),
    ([], "give image files"),
])
def test_explain_argument_errors(args, message):
    done = run("explain", *args)
    assert done.returncode == 2 and message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_benchmark_shard_and_merge(tmp_path):
    import skimage.data

    Image.fromarray(skimage.data.coffee()).save(tmp_path / "a.png")
    Image.fromarray(skimage.data.chelsea()).save(tmp_path / "b.png")
    outs = []
    for index in (0, 1):
        done = run("benchmark", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "--models",
                   "efficientnet_lite0", "--methods", "saliency", "--shard", f"{index}/2",
                   "--out", str(tmp_path / "bench"))
        assert done.returncode == 0, done.stderr
        outs.append(tmp_path / "bench" / f"shard-{index}-of-2" / "results.csv")
    merged = run("merge", *map(str, outs), "--out", str(tmp_path / "merged"))
    assert merged.returncode == 0, merged.stderr
    assert "efficientnet_lite0" in merged.stdout and " 2 " in merged.stdout  # n = 2 images
    assert (tmp_path / "merged" / "table.txt").read_text().strip() in merged.stdout
