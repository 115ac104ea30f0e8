"""The benchmark harness on a tiny model: methods, runs, tables, pictures, shards."""

import math

import numpy as np
import pytest
import torch
from PIL import Image

from captum_idg.evaluation.datasets import Entry, find_images
from captum_idg.evaluation.images import demo_images, load_image, views
from captum_idg.evaluation.methods import METHODS, make_method
from captum_idg.evaluation.models import LITE_MEAN, LITE_STD, ImageModel, load_model
from captum_idg.evaluation.pipeline import run
from captum_idg.evaluation.report import (
    paired,
    paired_table,
    photo_table,
    plot_paired,
    rebuild,
    summary_table,
)
from captum_idg.evaluation.results import Record, read_csv, read_curves, read_rows, write_csv
from captum_idg.evaluation.stats import mean_interval, sign_test


def same(a, b) -> bool:
    """Records equal field by field, a NaN (a metric not scored) equal to a NaN."""
    return [repr(r) for r in a] == [repr(r) for r in b]


def tiny_model() -> ImageModel:
    torch.manual_seed(0)
    module = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 5, stride=2), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(32, 1000),
    ).eval()
    return ImageModel("tiny", module, LITE_MEAN, LITE_STD, 32)


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_explains_a_batch_with_finite_maps(method):
    model = tiny_model()
    x = model.normalise(torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1)))
    target = model.module(x).argmax(1)
    attribution = make_method(method, model, n_steps=4)(x, target)
    assert attribution.shape == x.shape and torch.isfinite(attribution).all()
    assert attribution.abs().sum() > 0


def test_normalised_images_go_through_captum_metrics_with_a_channels_last_model():
    from captum.metrics import sensitivity_max

    from captum_idg import IntegratedDecisionGradients

    model = tiny_model()
    model.module.to(memory_format=torch.channels_last)  # as load_model leaves it
    x = model.normalise(torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(2)))
    assert x.is_contiguous()
    idg = IntegratedDecisionGradients(model.module)
    torch.manual_seed(0)
    sens = sensitivity_max(idg.attribute, x, target=[1, 2], n_steps=4, n_perturb_samples=2)
    assert sens.shape == (2,) and torch.isfinite(sens).all()


def test_unknown_method_and_model():
    with pytest.raises(ValueError, match="method"):
        make_method("shap_magic", tiny_model())
    with pytest.raises(ValueError, match="model"):
        load_model("alexnet")


def test_torchvision_model_with_a_weights_file(tmp_path):
    import torchvision

    path = tmp_path / "weights.pth"
    torch.save(torchvision.models.squeezenet1_1(weights=None).state_dict(), path)
    model = load_model(f"torchvision:squeezenet1_1:{path}")
    assert model.size == 224 and not model.module.training
    with pytest.raises(ValueError, match="weights"):
        load_model(f"torchvision:resnet18:{path}")


def test_run_writes_table_csv_and_pictures(tmp_path):
    images = [Entry(im.name, im.pixels, im.labels) for im in demo_images()
              if im.name in ("coffee", "astronaut")]
    images.append(Entry("unlabelled", images[0].source.flip(-1)))
    result = run(images, [tiny_model()], ["idg", "saliency"], tmp_path, n_steps=4,
                 progress=False)
    # the random model gets no labelled photo right: only the unlabelled one stays
    assert sorted(result.skipped["tiny"]) == ["astronaut", "coffee"]
    records = read_csv([tmp_path / "results.csv"])
    assert {(r.image, r.method, r.spec) for r in records} == {
        ("unlabelled", "IDG", "idg"), ("unlabelled", "Saliency", "saliency")}
    for r in records:
        assert 0 <= r.insertion <= 1 and 0 <= r.deletion <= 1 and r.seconds > 0
        assert r.pixels_per_step == 32 and r.size == 32 and r.version
    curves = read_curves([tmp_path / "curves.jsonl"])
    assert set(curves) == {("tiny", "unlabelled", "IDG"), ("tiny", "unlabelled", "Saliency")}
    for png in ("curves_tiny.png", "heatmaps/tiny/unlabelled.png"):
        with Image.open(tmp_path / png) as picture:
            assert picture.size[0] > 300 and np.asarray(picture).std() > 0
    # a second run over the same folder runs nothing again
    again = run(images, [tiny_model()], ["idg", "saliency"], tmp_path, n_steps=4,
                progress=False)
    assert again.rows == 0 and again.resumed == 2
    assert same(read_csv([tmp_path / "results.csv"]), records)


@pytest.mark.parametrize("keep", [False, True])
def test_a_resumed_image_keeps_every_method_in_its_heatmap(tmp_path, monkeypatch, keep):
    import captum_idg.evaluation.pipeline as pipeline

    drawn = []

    def plot(pixels, maps, titles, suptitle, path, legend):
        drawn.append((maps, titles))
        assert [line.split(":")[0] for line in legend] == list(maps)  # one line a method
        path.touch()

    monkeypatch.setattr(pipeline, "plot_heatmaps", plot)
    image = Entry("mine", demo_images()[0].pixels)
    go = lambda specs: run([image], [tiny_model()], specs, tmp_path,  # noqa: E731
                           n_steps=4, progress=False, keep_attributions=keep)
    go(["saliency", "idg_uniform:3"])
    first = drawn[-1][0]
    go(["idg"])  # a later run with only a new method
    maps, titles = drawn[-1]
    assert list(maps) == ["Saliency", "IDG uniform (3)", "IDG"]  # earlier rows first
    for label in ("Saliency", "IDG uniform (3)"):  # from the store, or explained again
        torch.testing.assert_close(maps[label], first[label])
    saliency = next(r for r in read_rows(tmp_path) if r.method == "Saliency")
    assert f"ins {saliency.insertion:.3f}" in titles["Saliency"]
    go(["saliency", "idg"])
    assert len(drawn) == 2  # nothing new: the figure is left as it is
    (tmp_path / "heatmaps" / "tiny" / "mine.png").unlink()
    go(["saliency"])  # a missing figure is drawn again, with every method
    assert len(drawn) == 3 and list(drawn[-1][0]) == ["Saliency", "IDG uniform (3)", "IDG"]


def test_a_row_cut_short_by_a_stopped_run_is_skipped(tmp_path):
    write_csv([Record("m", "a", "IG", 1, "c", 0.5, 0.3, 0.1, 1.0)], tmp_path / "results.csv")
    with open(tmp_path / "results.csv", "a") as f:
        f.write("m,b,IG,1,c,0.5,0.")  # the process died while writing
    assert [r.image for r in read_csv([tmp_path / "results.csv"])] == ["a"]


def test_paired_table_against_ig_and_the_sign_test():
    # B beats IG by 0.1 on four images of five and loses once
    records = []
    for i, edge in enumerate([0.1, 0.1, 0.1, 0.1, -0.2]):
        records.append(Record("m", f"im{i}", "IG", 1, "c", 0.5, 0.4, 0.1, 1.0))
        records.append(Record("m", f"im{i}", "B", 1, "c", 0.5, 0.4 + edge, 0.1, 1.0))
    table = paired_table(paired(records)).splitlines()
    fields = table[2].split()
    assert fields[1] == "B" and fields[2] == "5" and fields[3] == "+0.0400"
    assert fields[6] == "[-0.0800," and fields[7] == "+0.1000]"  # every image its own photo
    assert fields[-3:] == ["4", "1", f"{sign_test(4, 1):.2g}"]
    assert sign_test(4, 1) == pytest.approx(2 * 6 / 32)  # two-sided binomial
    assert sign_test(10, 0) == pytest.approx(2 / 1024) and sign_test(0, 0) == 1.0


def test_per_photo_table_and_paired_picture(tmp_path):
    # two methods against IG on random views of three photos: the slow obvious loop
    rng = np.random.default_rng(5)
    records, views_of = [], {"cat": 4, "cup": 3, "rocket": 1}
    for name, count in views_of.items():
        for v in range(count):
            image = f"{name}@0.8-c{v}"
            for method in ("IG", "A", "B"):
                if method == "B" and name == "cup":
                    continue  # B never ran on cup
                ins, dele = rng.uniform(0.2, 0.9), rng.uniform(0.0, 0.2)
                records.append(Record("m", image, method, 1, "c", 0.5, ins, dele, 1.0))
    score = {(r.image, r.method): r.insertion - r.deletion for r in records}
    rows = {row.method: row for row in paired(records)}
    table = photo_table(paired(records)).splitlines()
    header = table[0].split()
    assert header[0] == "m" and set(header[1:]) == {"A", "B"}
    ends = [table[0].index(f" {method}") + len(method) + 1 for method in header[1:]]
    for line in table[1:]:
        name = line.split()[0]
        for method, start, end in zip(header[1:], [20] + ends, ends):
            cell = line[start:end].split()
            expected = [score[f"{name}@0.8-c{v}", method] - score[f"{name}@0.8-c{v}", "IG"]
                        for v in range(views_of[name]) if (f"{name}@0.8-c{v}", method) in score]
            if not expected:
                assert cell == ["-"]
                continue
            assert float(cell[0]) == pytest.approx(np.mean(expected), abs=5e-5)
            assert cell[1] == f"({len(expected)})"
    assert len(rows["A"].scores) == 8 and len(rows["B"].scores) == 5
    assert rows["A"].wins + rows["A"].losses == 8
    plot_paired(list(rows.values()), tmp_path / "paired.png")
    with Image.open(tmp_path / "paired.png") as picture:
        assert picture.size[0] > 300 and np.asarray(picture).std() > 0


def test_report_against_another_method(tmp_path):
    records = [Record("m", f"v{i}", method, 1, "c", 0.5, score, 0.1, 1.0)
               for i in range(4) for method, score in (("IG", 0.3), ("Guided IG", 0.2),
                                                       ("IDG", 0.4 + 0.01 * i))]
    write_csv(records, tmp_path / "results.csv")
    text = rebuild(tmp_path, "Guided IG")
    assert "Paired against Guided IG" in text
    pairs = text.split("Paired against")[1].splitlines()
    row = next(line for line in pairs if " IDG " in line and "[" in line)
    assert row.split()[1:4] == ["IDG", "4", "+0.2150"]  # against Guided IG, not IG
    for name in ("paired_vs_Guided_IG.txt", "photos_vs_Guided_IG.txt", "paired_vs_Guided_IG.png",
                 "table.txt"):
        assert (tmp_path / name).exists()
    assert not (tmp_path / "paired.txt").exists()
    with pytest.raises(ValueError, match="no rows of the method 'AGI'"):
        rebuild(tmp_path, "AGI")


def test_views_of_a_photo():
    photo = next(im for im in demo_images() if im.name == "chelsea")
    found = views(photo)
    assert len(found) == 22 and len({v.name for v in found}) == 22
    full = next(v for v in found if v.name == "chelsea@1-c")
    _, height, width = photo.pixels.shape
    side = min(height, width)
    assert full.pixels.shape == (3, side, side)
    mirrored = next(v for v in found if v.name == "chelsea@0.64-tl-m")
    corner = photo.pixels[:, : round(0.64 * side), : round(0.64 * side)]
    torch.testing.assert_close(mirrored.pixels, corner.flip(-1))
    assert all(v.labels == photo.labels for v in found)


def test_summary_table_and_interval():
    records = [Record("m", f"im{i}", method, 1, "c", 0.5, ins, 0.1, 1.0)
               for i, (method, ins) in enumerate([("A", 0.2), ("A", 0.4), ("B", 0.9), ("B", 0.7)])]
    table = summary_table(records)
    lines = table.splitlines()
    assert lines[2].split()[1] == "B" and "*0.800" in lines[2]  # best first, starred
    mean, low, high = mean_interval([0.2, 0.4, 0.6, 0.8])
    assert mean == pytest.approx(0.5) and 0.2 <= low < mean < high <= 0.8
    assert math.isnan(mean_interval([1.0])[1])


def test_interval_by_photo_resamples_whole_photos():
    # two photos, three views each: the slow obvious cluster bootstrap
    values = [0.1, 0.2, 0.3, 0.7, 0.8, 0.9]
    groups = ["a", "a", "a", "b", "b", "b"]
    rng = np.random.default_rng(0)
    draws = []
    for _ in range(4000):
        picked = rng.integers(0, 2, size=2)
        chosen = [v for k in picked for v, g in zip(values, groups) if g == "ab"[k]]
        draws.append(sum(chosen) / len(chosen))
    mean, low, high = mean_interval(values, groups)
    assert mean == pytest.approx(0.5)
    assert (low, high) == pytest.approx(tuple(np.percentile(draws, [2.5, 97.5])))
    assert low == pytest.approx(0.2) and high == pytest.approx(0.8)  # photo means only
    assert mean_interval(values)[1] > low + 0.03  # as independent images: narrower
    assert math.isnan(mean_interval(values, ["a"] * 6)[1])  # one photo: no interval


def test_rows_of_several_files_and_old_columns(tmp_path):
    records = [Record("m", str(i), "A", 1, "c", 0.5, 0.3, 0.1, 1.0) for i in range(4)]
    write_csv(records[:2], tmp_path / "a.csv")
    write_csv(records[2:], tmp_path / "b.csv")
    assert same(read_csv([tmp_path / "a.csv", tmp_path / "b.csv"]), records)
    old = "model,image,method,target,class_name,probability,insertion,deletion,seconds\n"
    (tmp_path / "old.csv").write_text(old + "m,x,IG,1,c,0.5,0.3,0.1,1.0\n")
    assert same(read_csv([tmp_path / "old.csv"]),
                [Record("m", "x", "IG", 1, "c", 0.5, 0.3, 0.1, 1.0)])


def test_image_files_of_every_kind_and_bad_ones(tmp_path):
    rgb = (np.random.default_rng(0).random((20, 30, 3)) * 255).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "good.png")
    Image.fromarray(rgb[..., 0]).save(tmp_path / "gray.png")
    Image.fromarray(np.dstack([rgb, np.full_like(rgb[..., :1], 0)])).save(tmp_path / "rgba.png")
    Image.fromarray(rgb[..., 0].astype(np.uint16) * 257).save(tmp_path / "grey16.png")
    Image.fromarray(rgb).convert("P").save(tmp_path / "palette.png")
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.jpg")
    for suffix in ("webp", "bmp", "tif"):
        Image.fromarray(rgb).save(tmp_path / f"lossless.{suffix}",
                                  **({"lossless": True} if suffix == "webp" else {}))
    (tmp_path / "text.jpg").write_text("not an image")
    paths = {e.name: e.source for e in find_images([tmp_path])}
    assert sorted(paths) == sorted(["good.png", "gray.png", "rgba.png", "grey16.png",
                                    "palette.png", "cmyk.jpg", "lossless.webp", "lossless.bmp",
                                    "lossless.tif", "text.jpg"])
    expected = torch.tensor(rgb / 255.0).float().permute(2, 0, 1)
    for name in ("good.png", "lossless.webp", "lossless.bmp", "lossless.tif"):
        torch.testing.assert_close(load_image(paths[name]).pixels, expected)
    grey = expected[:1].expand(3, -1, -1)
    for name in ("gray.png", "grey16.png"):  # 16 bits: not clipped to white
        torch.testing.assert_close(load_image(paths[name]).pixels, grey, atol=1e-4, rtol=0)
    torch.testing.assert_close(load_image(paths["rgba.png"]).pixels,  # transparent: white
                               torch.ones(3, 20, 30))
    assert (load_image(paths["palette.png"]).pixels - expected).abs().mean() < 0.1
    assert (load_image(paths["cmyk.jpg"]).pixels - expected).abs().mean() < 0.1
    with pytest.raises(ValueError, match="readable"):
        load_image(paths["text.jpg"])
