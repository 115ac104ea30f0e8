"""The command line end to end: explain, benchmark (resume, shards, report), errors, help."""

import csv
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from captum_idg.cli import _parser


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "captum_idg.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=900)


def assert_png(path):
    with Image.open(path) as picture:
        pixels = np.asarray(picture)
    assert picture.format == "PNG" and pixels.shape[1] > 500 and pixels.std() > 10


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_explain_demo_end_to_end(tmp_path):
    done = run("explain", "--demo", "--methods", "idg", "--n-steps", "4", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 6
    assert any("espresso" in line for line in lines if line.startswith("coffee:"))
    # the astronaut has no ImageNet class: whatever the model says is marked
    assert "[not among this photo's known classes]" in next(
        line for line in lines if line.startswith("astronaut:"))
    assert "explain:" in done.stderr  # the progress bar
    for name in ("chelsea", "coffee", "rocket", "motorcycle_left", "motorcycle_right",
                 "astronaut"):
        assert_png(tmp_path / f"{name}.png")


@pytest.mark.slow
def test_explain_takes_any_image_and_reports_bad_files(tmp_path):
    import skimage.data

    photos = tmp_path / "photos"
    photos.mkdir()
    coffee = skimage.data.coffee()
    Image.fromarray(coffee).save(photos / "cup.jpg")
    Image.fromarray(coffee[..., 0]).save(photos / "gray.png")
    Image.fromarray(np.dstack([coffee, coffee[..., :1]])).save(photos / "rgba.png")
    Image.fromarray(coffee).convert("P").save(photos / "palette.png")
    (photos / "notes.png").write_text("not an image")
    done = run("explain", str(photos), str(tmp_path / "missing.jpg"), "--methods", "saliency",
               "--out", str(tmp_path / "out"))
    assert done.returncode == 2
    errors = [e for e in done.stderr.splitlines() if e.startswith("captum-idg: error:")]
    assert len(errors) == 2 and any("notes.png" in e for e in errors)
    explained = {line.split(":")[0] for line in done.stdout.splitlines()}
    assert explained == {"cup", "gray", "rgba", "palette"}
    for name in explained:
        assert_png(tmp_path / "out" / f"{name}.png")


@pytest.mark.parametrize("args, message", [
    (["explain", "--demo", "--methods", "idg,lime"], "unknown method 'lime'"),
    (["explain", "--demo", "--model", "vgg"], "unknown model 'vgg'"),
    (["explain"], "give image files"),
    (["benchmark", "--demo", "--methods", "idg:x"], "steps after ':'"),
    (["report", "nowhere"], "no results.csv"),
    (["report", "nowhere", "--against", "lime"], "unknown method 'lime'"),
])
def test_argument_errors(args, message):
    done = run(*args)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_help_is_fast_and_every_option_explains_itself():
    # --help must not import torch (it took 28 s when it did)
    code = ("import sys; from captum_idg.cli import main\n"
            "try:\n    main(['benchmark', '--help'])\nexcept SystemExit:\n    pass\n"
            "print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip().endswith("False"), done.stdout
    parser = _parser()
    commands = parser._subparsers._group_actions[0].choices
    for name, command in commands.items():
        for action in command._actions:
            if action.dest != "help":
                assert action.help, (name, action.dest)


@pytest.mark.slow
def test_benchmark_resumes_shards_merge_and_report(tmp_path):
    import skimage.data

    Image.fromarray(skimage.data.coffee()).save(tmp_path / "a.png")
    Image.fromarray(skimage.data.chelsea()).save(tmp_path / "b.png")
    images = [str(tmp_path / "a.png"), str(tmp_path / "b.png")]
    common = ["--models", "efficientnet_lite0", "--methods", "saliency,ig", "--n-steps", "4"]
    first = run("benchmark", images[0], *common, "--out", str(tmp_path / "one"))
    assert first.returncode == 0, first.stderr
    assert len(rows(tmp_path / "one" / "results.csv")) == 2
    again = run("benchmark", images[0], *common, "--out", str(tmp_path / "one"))
    assert "resumed: 2 rows" in again.stdout
    assert len(rows(tmp_path / "one" / "results.csv")) == 2  # nothing run twice
    for index in (0, 1):
        done = run("benchmark", *images, *common, "--shard", f"{index}/2",
                   "--out", str(tmp_path / "bench"))
        assert done.returncode == 0, done.stderr
    shards = [str(tmp_path / "bench" / f"shard-{i}-of-2") for i in (0, 1)]
    merged = run("merge", *shards, "--out", str(tmp_path / "merged"))
    assert merged.returncode == 0, merged.stderr
    assert {r["image"] for r in rows(tmp_path / "merged" / "results.csv")} == {"a", "b"}
    report = run("report", str(tmp_path / "merged"))
    assert report.returncode == 0 and "Paired against IG" in report.stdout
    assert (tmp_path / "merged" / "table.txt").read_text().strip() in report.stdout
    assert_png(tmp_path / "merged" / "curves_efficientnet_lite0.png")
