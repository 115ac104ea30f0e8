"""The command line end to end: explain, benchmark (resume, report), attribute, errors, help."""

import csv
import subprocess
import sys

import numpy as np
import pytest
import torch
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
    assert "[not among its known classes]" in next(
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
    missing = run("explain", str(photos), str(tmp_path / "missing.jpg"), "--methods",
                  "saliency", "--out", str(tmp_path / "out"))
    assert missing.returncode == 2 and "not found: " in missing.stderr  # before any work
    assert not (tmp_path / "out").exists()
    done = run("explain", str(photos), "--methods", "saliency", "--out", str(tmp_path / "out"))
    assert done.returncode == 2  # one image could not be read
    errors = [e for e in done.stderr.splitlines() if e.startswith("captum-idg: skipped")]
    assert len(errors) == 1 and "notes.png" in errors[0]
    explained = {line.split(":")[0] for line in done.stdout.splitlines()}
    assert explained == {"cup.jpg", "gray.png", "rgba.png", "palette.png"}
    assert "600x400 shrunk to a short side of 256, centre 224x224 crop" in done.stdout
    for name in explained:
        assert_png(tmp_path / "out" / f"{name}.png")


@pytest.mark.parametrize("args, message", [
    (["explain", "--demo", "--methods", "idg,limes"], "--methods: unknown method 'limes'"),
    (["explain", "--demo", "--model", "vgg"], "unknown model 'vgg'"),
    (["explain"], "give image files"),
    (["explain", "nowhere.png", "--model", "efficientnet_lite0"], "not found: nowhere.png"),
    (["benchmark", "--n-steps", "-5"], "--n-steps: must be at least 2, got -5"),
    (["explain", "--demo", "--device", "gpu"], "--device: must be cpu, cuda or cuda:N"),
    (["benchmark", "--demo", "--methods", "idg:x"], "steps after ':'"),
    (["report", "nowhere"], "no results.csv"),
    (["report", "nowhere", "--against", "limes"], "--against: unknown method 'limes'"),
    (["benchmark", "--metrics", "road,pic"], "--metrics: unknown metric 'pic'"),
])
def test_argument_errors(args, message):
    done = run(*args)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("captum-idg")


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
def test_benchmark_resumes_refuses_other_settings_and_reports(tmp_path):
    import skimage.data

    Image.fromarray(skimage.data.coffee()).save(tmp_path / "a.png")
    Image.fromarray(skimage.data.chelsea()).save(tmp_path / "b.png")
    common = ["--models", "efficientnet_lite0", "--methods", "saliency,ig", "--n-steps", "4",
              "--pixels-per-step", "4096", "--out", str(tmp_path / "out")]
    first = run("benchmark", str(tmp_path / "a.png"), *common)
    assert first.returncode == 0, first.stderr
    assert len(rows(tmp_path / "out" / "results.csv")) == 2
    again = run("benchmark", str(tmp_path / "a.png"), str(tmp_path / "b.png"), *common)
    assert again.returncode == 0 and "resumed: 2 rows" in again.stdout
    found = rows(tmp_path / "out" / "results.csv")
    assert sorted((r["image"], r["spec"], r["n_steps"]) for r in found) == [
        ("a.png", "ig", "4"), ("a.png", "saliency", "0"), ("b.png", "ig", "4"),
        ("b.png", "saliency", "0")]  # nothing run twice, the settings recorded
    other = run("benchmark", str(tmp_path / "a.png"), *common[:-2], "--n-steps", "8",
                "--out", str(tmp_path / "out"))
    assert other.returncode == 2 and "use another --out" in other.stderr  # never mixed
    report = run("report", str(tmp_path / "out"))
    assert report.returncode == 0 and "Paired against IG" in report.stdout
    assert (tmp_path / "out" / "table.txt").read_text().strip() in report.stdout
    assert_png(tmp_path / "out" / "curves_efficientnet_lite0.png")


@pytest.mark.slow
def test_attribute_keeps_every_map_and_reads_one_back(tmp_path):
    import skimage.data

    from captum_idg.evaluation import read_attribution
    from captum_idg.evaluation.images import load_image, prepare
    from captum_idg.evaluation.methods import make_method
    from captum_idg.evaluation.models import load_model

    photos = tmp_path / "photos" / "n02123045"  # tabby: an ImageFolder class
    photos.mkdir(parents=True)
    Image.fromarray(skimage.data.chelsea()).save(photos / "cat.png")
    Image.fromarray(skimage.data.coffee()).save(photos / "cup.png")
    done = run("attribute", str(tmp_path / "photos"), "--method", "idg", "--n-steps", "4",
               "--float16", "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    found = rows(tmp_path / "out" / "results.csv")
    assert sorted(r["image"] for r in found) == ["n02123045/cat.png", "n02123045/cup.png"]
    assert all(r["labels"] == "281" and r["insertion"] == "nan" for r in found)
    model = load_model("efficientnet_lite0")
    image = "n02123045/cat.png"
    x = model.normalise(prepare(load_image(photos / "cat.png").pixels, model.size)[None])
    target = model.module(x).argmax(1)
    direct = make_method("idg", model, 4)(x, target)[0]
    stored = read_attribution(tmp_path / "out", image, "idg")
    assert stored.dtype == torch.float16 and stored.shape == direct.shape
    scale = direct.abs().max()
    torch.testing.assert_close(stored.float() / scale, direct / scale, atol=2e-3, rtol=0)


def test_ctrl_c_keeps_the_rows_and_says_how_to_resume(tmp_path):
    import os
    import signal

    import torchvision

    torch.save(torchvision.models.squeezenet1_1(weights=None).state_dict(), tmp_path / "w.pth")
    rng = np.random.default_rng(0)
    (tmp_path / "images").mkdir()
    for k in range(12):
        Image.fromarray((rng.random((64, 64, 3)) * 255).astype(np.uint8)).save(
            tmp_path / "images" / f"{k:02d}.png")
    command = [sys.executable, "-m", "captum_idg.cli", "explain", str(tmp_path / "images"),
               "--model", f"torchvision:squeezenet1_1:{tmp_path / 'w.pth'}", "--methods", "idg",
               "--n-steps", "32", "--out", str(tmp_path / "out")]
    running = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    first = running.stdout.readline()  # one image done
    os.killpg(running.pid, signal.SIGINT)  # as Ctrl-C in a terminal: the whole group
    _, stderr = running.communicate(timeout=120)
    assert first.startswith("00.png") and running.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1] == (
        f"captum-idg: stopped. Every finished row is kept in {tmp_path / 'out'}; run the same "
        "command again to resume.")
    from captum_idg.evaluation.results import read_rows

    assert 1 <= len(read_rows(tmp_path / "out")) < 12


def test_the_command_and_the_registry_read_one_list_of_names():
    from captum_idg import cli, names
    from captum_idg.evaluation.methods import METHODS

    assert cli.METHOD_NAMES is names.METHOD_NAMES and cli.METRIC_NAMES is names.METRIC_NAMES
    assert tuple(METHODS) == names.METHOD_NAMES
    assert "torch" not in names.__dict__  # the command line reads it before torch loads


def test_a_workers_lost_connection_to_the_main_process_prints_nothing_else_does():
    # a DataLoader worker (its worker_init_fn run): the broken connection of a
    # tensor-sharing thread, reported through threading.excepthook or, as
    # multiprocessing's resource_sharer does, sys.excepthook, is quiet; any
    # other error is printed
    code = """
import sys, threading
from captum_idg.evaluation.datasets import ignore_interrupts
ignore_interrupts(0)
for error in (EOFError(), ConnectionResetError(), ValueError("kept")):
    try:
        raise error
    except BaseException:
        sys.excepthook(*sys.exc_info())
def lost():
    raise EOFError
def other():
    raise KeyError("kept too")
for target in (lost, other):
    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert "ValueError: kept" in done.stderr and "KeyError: 'kept too'" in done.stderr
    assert "EOFError" not in done.stderr and "ConnectionResetError" not in done.stderr
