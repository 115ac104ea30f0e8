"""The league table: means, paired differences turned so above 0 beats IDG, verdicts, picture."""

import math

import numpy as np
import pytest
from PIL import Image

from captum_idg.evaluation.league import league, league_table, plot_league
from captum_idg.evaluation.results import Record
from captum_idg.evaluation.stats import mean_interval


def _records():
    rng = np.random.default_rng(0)
    records = []
    for photo in ("cat", "cup", "rocket"):
        for view in range(3):
            image = f"{photo}@0.8-c{view}"
            for method, shift in (("IDG", 0.0), ("IG", -0.05), ("LIME", 0.02)):
                if method == "LIME" and view == 2:
                    continue  # a slow method on fewer views
                ins, dele = 0.6 + shift + 0.01 * rng.standard_normal(), 0.2 - shift
                road = 0.3 + shift
                mprt = math.nan if method == "LIME" else 0.4 - shift
                records.append(Record("m", image, method, 1, "c", 0.9, ins, dele, 1.5,
                                      road=road, mprt=mprt))
    return records


def test_paired_differences_are_turned_so_above_zero_beats_idg():
    records = _records()
    table = league(records)["m"]
    assert list(table) == ["IDG", "IG", "LIME"]
    ig = table["IG"]
    for metric in ("insertion", "ins-del", "road"):
        assert ig[metric].difference[0] < 0 and ig[metric].verdict == "-"
    # deletion and mprt: IG is higher (worse), so its turned difference is below 0 too
    assert ig["deletion"].difference[0] == pytest.approx(-0.05)
    assert ig["mprt"].difference[0] == pytest.approx(-0.05)
    by_image = {r.image: r for r in records if r.method == "IDG"}
    diffs = [r.insertion - by_image[r.image].insertion for r in records if r.method == "IG"]
    assert ig["insertion"].difference == pytest.approx(mean_interval(diffs))
    assert ig["insertion"].losses == 9 and ig["insertion"].pairs == 9
    lime = table["LIME"]
    assert lime["road"].pairs == 6 and "mprt" not in lime and lime["road"].verdict == "+"
    assert table["IDG"]["road"].pairs == 0  # the reference is not paired with itself


def test_table_text_and_picture(tmp_path):
    text = league_table(_records())
    assert "above 0 is better than IDG" in text and "lower is better" in text
    assert "LIME" in text and "s/image" in text
    plot_league(_records(), "m", tmp_path / "league.png")
    with Image.open(tmp_path / "league.png") as picture:
        assert picture.size[0] > 400 and np.asarray(picture).std() > 0
