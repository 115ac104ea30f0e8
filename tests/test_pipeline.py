"""The attribution pipeline: datasets, batches equal to single images, the store,
out-of-memory halving, resume, and torchrun ranks equal to one process."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from captum_idg.evaluation.datasets import Entry, find_images, imagenet_synsets, select
from captum_idg.evaluation.methods import make_method
from captum_idg.evaluation.pipeline import attribute_in_halves, run
from captum_idg.evaluation.results import read_rows, read_run_curves, read_skipped
from captum_idg.evaluation.store import read_attribution
from captum_idg.metrics import curve_auc, deletion_curve, insertion_curve

sys.path.insert(0, str(Path(__file__).parent))
from pipeline_job import METHODS, tiny_model  # noqa: E402

JOB = str(Path(__file__).parent / "pipeline_job.py")
TENCH, GOLDFISH = "n01440764", "n01443537"


def image_folder(root: Path, per_class: int = 4, bad: bool = True) -> Path:
    """An ImageFolder tree: two synset folders, one other folder, random sizes."""
    rng = np.random.default_rng(0)
    for folder in (TENCH, GOLDFISH, "holiday"):
        (root / folder).mkdir(parents=True, exist_ok=True)
        for k in range(per_class):
            size = rng.integers(24, 64, size=2)
            pixels = (rng.random((*size, 3)) * 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / folder / f"{k}.png")
    if bad:
        (root / "holiday" / "broken.jpg").write_text("not an image")
    return root


def test_image_folder_labels_names_and_selection(tmp_path):
    root = image_folder(tmp_path / "images", per_class=5)
    Image.new("RGB", (40, 30)).save(root / "loose.png")  # a flat file beside the folders
    entries = find_images([root])
    by_name = {e.name: e for e in entries}
    assert len(entries) == 17 and f"{TENCH}/0.png" in by_name and "loose.png" in by_name
    assert imagenet_synsets()[TENCH] == 0 and imagenet_synsets()["n02123045"] == 281  # tabby
    assert by_name[f"{GOLDFISH}/3.png"].labels == {1}
    assert by_name["holiday/2.png"].labels is None and by_name["loose.png"].labels is None
    picked = select(entries, per_class=2, seed=3)
    groups = [e.group for e in picked]
    assert all(groups.count(g) <= 2 for g in groups) and len(picked) == 7
    assert picked == select(entries, per_class=2, seed=3)  # the seed fixes the draw
    assert [e.name for e in select(entries, per_class=2)][:2] == ["holiday/0.png",
                                                                 "holiday/1.png"]
    with pytest.raises(ValueError, match="not found: .*nowhere"):
        find_images([root, tmp_path / "nowhere"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images"):
        find_images([tmp_path / "empty"])
    with pytest.raises(ValueError, match="two images are named '0.png'"):
        find_images([root / TENCH / "0.png", root / GOLDFISH / "0.png"])


def test_batches_equal_single_images_and_the_store_reads_back(tmp_path):
    root = image_folder(tmp_path / "images")
    out = tmp_path / "out"
    model = tiny_model()
    summary = run(find_images([root]), [model], METHODS, out, n_steps=8, batch_size=5,
                  pixels_per_step=64, keep_attributions=True, correct_only=False,
                  heatmaps=False, progress=False)
    assert summary.rows == 12 * 3 and summary.skipped == {"tiny": ["holiday/broken.jpg"]}
    assert "unreadable" in read_skipped(out)["tiny", "holiday/broken.jpg"]
    rows = read_rows(out)
    assert not (out / "parts").exists() or not any((out / "parts").iterdir())
    from captum_idg.evaluation.datasets import ImageDataset

    dataset = ImageDataset(find_images([root])[:-1], model.size)
    for entry, pixels, _ in (dataset[i] for i in range(len(dataset))):
        if not isinstance(pixels, torch.Tensor):
            continue
        x = model.normalise(pixels[None])
        target = model.module(x).argmax(1)
        for spec in METHODS:  # the slow obvious way: one image, one call
            row = next(r for r in rows if (r.image, r.spec) == (entry.name, spec))
            direct = make_method(spec, model, 8)(x, target).detach()
            assert row.target == int(target) and row.n_steps == (0 if spec == "saliency" else 8)
            torch.testing.assert_close(read_attribution(out, entry.name, spec), direct[0],
                                       atol=1e-6, rtol=1e-5)
            ins = curve_auc(insertion_curve(model.module, x, direct, target, pixels_per_step=64))
            dele = curve_auc(deletion_curve(model.module, x, direct, target, pixels_per_step=64))
            assert abs(row.insertion - float(ins)) < 1e-6
            assert abs(row.deletion - float(dele)) < 1e-6
    again = run(find_images([root]), [model], METHODS, out, n_steps=8, batch_size=5,
                pixels_per_step=64, keep_attributions=True, correct_only=False,
                heatmaps=False, progress=False)
    assert again.rows == 0 and again.resumed == 36
    with pytest.raises(ValueError, match="n_steps 8.*asks n_steps 16"):  # never a silent reuse
        run(find_images([root]), [model], ["idg"], out, n_steps=16, pixels_per_step=64,
            correct_only=False, heatmaps=False, progress=False)


def test_float16_store_and_correct_only(tmp_path):
    root = image_folder(tmp_path / "images", bad=False)
    model = tiny_model()
    run(find_images([root]), [model], ["saliency"], tmp_path / "out", metrics=(),
        keep_attributions=True, float16=True, heatmaps=False, progress=False)
    rows = read_rows(tmp_path / "out")
    # the random model predicts neither tench nor goldfish: only "holiday" is explained
    assert sorted(r.image for r in rows) == [f"holiday/{k}.png" for k in range(4)]
    assert all(np.isnan(r.insertion) for r in rows)
    stored = read_attribution(tmp_path / "out", "holiday/0.png", "saliency")
    assert stored.dtype == torch.float16
    skipped = read_skipped(tmp_path / "out")
    assert len(skipped) == 8 and all(r.startswith("predicted") for r in skipped.values())
    with pytest.raises(ValueError, match="no stored attribution"):
        read_attribution(tmp_path / "out", "holiday/0.png", "idg")


def test_out_of_memory_halves_the_batch(tmp_path):
    model = tiny_model()
    x = model.normalise(torch.rand(5, 3, 32, 32, generator=torch.Generator().manual_seed(0)))
    target = model.module(x).argmax(1)
    explain = make_method("idg", model, 8)
    calls, logged = [], []

    def fragile(xs, ts):
        calls.append(len(xs))
        if len(xs) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return explain(xs, ts)

    result = attribute_in_halves(fragile, x, target, logged.append)
    torch.testing.assert_close(result, explain(x, target), atol=1e-6, rtol=1e-5)
    assert calls == [5, 2, 3, 1, 2] and "retrying as 2 + 3" in logged[0]

    def always(xs, ts):
        raise torch.OutOfMemoryError("simulated")

    with pytest.raises(torch.OutOfMemoryError):  # a single image: the caller's to handle
        attribute_in_halves(always, x, target, logged.append)


def _torchrun(images, out, sleep=0.0, ranks=2):
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={ranks}",
               "--standalone", JOB, str(images), str(out), str(sleep)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def _kill_with_workers(launcher):
    """SIGKILL to torchrun and to its workers, which torch starts in sessions of their
    own (a kill of torchrun's process group alone leaves them running and writing)."""
    workers = _children(launcher.pid)
    os.killpg(launcher.pid, signal.SIGKILL)
    for pid in workers:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    launcher.wait()


def _children(pid):
    """The processes whose parent is ``pid``, from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # it ended meanwhile
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _same_rows(a, b):
    rows_a = {r.key: r for r in read_rows(a)}
    rows_b = {r.key: r for r in read_rows(b)}
    assert set(rows_a) == set(rows_b) and len(rows_a) == 33 * 3
    for key, row in rows_a.items():
        other = rows_b[key]
        assert (row.target, row.labels) == (other.target, other.labels)
        assert abs(row.insertion - other.insertion) < 1e-6, key
        assert abs(row.deletion - other.deletion) < 1e-6, key
        torch.testing.assert_close(read_attribution(a, key[1], key[2]),
                                   read_attribution(b, key[1], key[2]), atol=1e-6, rtol=1e-5)


@pytest.mark.slow
def test_torchrun_ranks_equal_one_process_and_a_killed_run_resumes(tmp_path):
    root = image_folder(tmp_path / "images", per_class=11)  # 33 images and a broken one
    single = subprocess.run([sys.executable, JOB, str(root), str(tmp_path / "one")],
                            capture_output=True, text=True, timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]
    ranked = _torchrun(root, tmp_path / "two")
    _, stderr = ranked.communicate(timeout=600)
    assert ranked.returncode == 0, stderr[-3000:]
    _same_rows(tmp_path / "one", tmp_path / "two")
    assert (tmp_path / "two" / "results.csv").exists()
    assert not list((tmp_path / "two" / "parts").glob("*"))  # merged into one results.csv
    assert len(read_skipped(tmp_path / "two")) == 1

    killed = _torchrun(root, tmp_path / "killed", sleep=0.05)
    parts = tmp_path / "killed" / "parts"
    deadline = time.time() + 300
    while time.time() < deadline:
        written = sum(len(p.read_text().splitlines()) for p in parts.glob("rank-*.csv")) \
            if parts.exists() else 0
        if written >= 12:
            break
        time.sleep(0.2)
    _kill_with_workers(killed)
    assert 0 < len(read_rows(tmp_path / "killed")) < 99
    resumed = subprocess.run([sys.executable, JOB, str(root), str(tmp_path / "killed")],
                             capture_output=True, text=True, timeout=600)  # now one rank
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    _same_rows(tmp_path / "one", tmp_path / "killed")


def test_your_own_dataset_and_captum_attribution_objects(tmp_path):
    from captum.attr import IntegratedGradients, Saliency
    from torch.utils.data import TensorDataset

    from captum_idg.evaluation.datasets import dataset_images

    pixels = torch.rand(6, 3, 40, 40, generator=torch.Generator().manual_seed(4))
    dataset = TensorDataset(pixels, torch.zeros(6))  # (pixels, label) items, as torchvision's
    entries = dataset_images(dataset, names=[f"im{i}" for i in range(6)],
                             labels=[None, None, None, None, 0, 0])
    model = tiny_model()
    ig = IntegratedGradients(model.module)
    methods = {"captum_ig": ig, "saliency": Saliency(model.module)}
    summary = run(entries, [model], methods, tmp_path, batch_size=4, pixels_per_step=64,
                  keep_attributions=True, heatmaps=False, progress=False, workers=1)
    assert summary.skipped == {"tiny": ["im4", "im5"]}  # labelled tench, predicted otherwise
    rows = {(r.image, r.method) for r in read_rows(tmp_path)}
    assert rows == {(f"im{i}", m) for i in range(4) for m in ("captum_ig", "saliency")}
    from captum_idg.evaluation.images import prepare

    x = model.normalise(prepare(pixels[2], 32)[None])
    direct = ig.attribute(x, target=model.module(x).argmax(1))
    torch.testing.assert_close(read_attribution(tmp_path, "im2", "captum_ig"), direct[0],
                               atol=1e-6, rtol=1e-5)
    with pytest.raises(ValueError, match="one per item"):
        dataset_images(dataset, names=["a"] * 6)


def test_resizing_is_said_in_words():
    from captum_idg.evaluation.pipeline import _resized

    assert _resized((2000, 3000), 224) == ("3000x2000 shrunk to a short side of 256, "
                                           "centre 224x224 crop")
    assert _resized((16, 16), 224).startswith("16x16 enlarged")
    assert _resized((224, 224), 224) == "224x224, as it is"


def test_road_and_randomisation_columns_equal_the_metrics_called_directly(tmp_path):
    from captum.attr import Saliency

    from captum_idg.evaluation.images import prepare
    from captum_idg.metrics import model_randomisation, road

    pixels = torch.rand(3, 3, 40, 40, generator=torch.Generator().manual_seed(5))
    entries = [Entry(f"im{i}", pixels[i]) for i in range(3)]
    model = tiny_model()
    metrics = ["road", "mprt"]
    run(entries, [model], ["saliency"], tmp_path / "spec", metrics=metrics, mprt_stages=2,
        heatmaps=False, progress=False)
    run(entries, [model], {"mine": Saliency(model.module)}, tmp_path / "object",
        metrics=metrics, mprt_stages=2, heatmaps=False, progress=False)
    x = model.normalise(torch.stack([prepare(p, 32) for p in pixels]))
    target = model.module(x).argmax(1)
    attributions = Saliency(model.module).attribute(x, target=target)
    expected_road = road(model.module, x, attributions, target, max_examples_per_batch=64)
    expected_mprt = model_randomisation(Saliency(model.module), x, target, stages=2)
    for folder in ("spec", "object"):
        rows = sorted(read_rows(tmp_path / folder), key=lambda r: r.image)
        assert [r.metrics for r in rows] == ["road,mprt:2"] * 3
        assert all(np.isnan(r.insertion) and r.pixels_per_step == 0 for r in rows)
        np.testing.assert_allclose([r.road for r in rows], expected_road, atol=1e-6)
        np.testing.assert_allclose([r.mprt for r in rows], expected_mprt, atol=1e-6)
    curves = read_run_curves(tmp_path / "spec")
    assert set(curves["tiny", "im0", "Saliency"]) == {"road_morf", "road_lerf"}
    assert "Saliency" in (tmp_path / "spec" / "league.txt").read_text()  # no insertion needed
    with pytest.raises(ValueError, match="metrics road,mprt:2"):
        run(entries, [model], ["saliency"], tmp_path / "spec", metrics=["road"],
            heatmaps=False, progress=False)
    with pytest.raises(ValueError, match="unknown metric 'pic'"):
        run(entries, [model], ["saliency"], tmp_path / "x", metrics=["pic"], progress=False)
