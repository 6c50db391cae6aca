"""What the "Liknande" list calls similar is calibrated against the collection itself:
a near-copy of a real photograph lies in the top band, pictures unrelated to the
others are not called similar and are folded under "Fler bilder"; the bands are in
the neighbour JSON and a changed calibration makes the item pages again."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from PIL import Image

from archive_sim.calibration import BANDS, KEEP_WITHIN, Calibration, calibrate, random_pair_similarities, settled
from archive_sim.embed.descriptors import descriptor_model_id
from archive_sim.config import settings_for_folder
from archive_sim.state_store import StateStore

from repo_images import PHOTOGRAPHS, SAMPLES

ORIGINAL = PHOTOGRAPHS / "1888Slum.jpg"
PHOTOS = [PHOTOGRAPHS / n for n in (
    "1850Geography.jpg", "1880Paris.jpg", "1890CliffHouseSF.jpg", "1896NewsBoyGirl.jpg", "1920sFamilyPhoto.jpg",
    "1948CarsGrandma.jpg", "40sCouple.jpg", "Ballet1890Russia.jpg", "Edinburgh1920s.jpg", "GasPrices1939.jpg",
    "IceManLondon1919.jpg", "JudyGarland.jpeg", "LondonStreets1900.jpg", "OregonTrail1870s.jpg")]
# Colour photographs of today among the old ones: a cat, a cup of coffee, a rocket.
UNRELATED = [SAMPLES / n for n in ("chelsea.png", "coffee.png", "rocket.jpg")]
NEAR_COPY = "slum-reprint"


@pytest.fixture(scope="module")
def site(tmp_path_factory, make_collection, cli):
    root = tmp_path_factory.mktemp("bands")
    collection = make_collection(root, {"photographs": [ORIGINAL, *PHOTOS, *UNRELATED]})
    # The same picture, another file: cropped, scaled down and recompressed.
    img = Image.open(ORIGINAL).convert("RGB")
    w, h = img.size
    crop = img.crop((int(w * 0.04), int(h * 0.04), int(w * 0.96), int(h * 0.95)))
    crop.resize((crop.width * 2 // 3, crop.height * 2 // 3)).save(collection / "photographs" / f"{NEAR_COPY}.jpg",
                                                                   quality=70)
    for stage in ("fetch", "embed", "index", "render"):
        run = cli(stage, "--images", str(collection), "--out", str(root / "site"), "-q")
        assert run.code == 0, run.err
    return root / "site"


def _sections(page: str) -> tuple[list[str], list[str]]:
    """The item folders linked from the "Liknande" list and from "Fler bilder", in page order."""
    similar = page[page.index('class="similar"'):]
    folded = ""
    if 'class="similar__more"' in similar:
        similar, folded = similar.split('class="similar__more"', 1)

    def linked(html: str) -> list[str]:
        return [href.split("/")[-2] for href in re.findall(r'class="card__link" href="([^"]+)"', html)]
    return linked(similar), linked(folded)


@pytest.mark.slow
def test_a_near_copy_is_in_the_top_band_and_the_bands_are_in_the_json(site: Path, site_items, read_json) -> None:
    items = site_items(site)
    doc = read_json(site / items[ORIGINAL.stem]["neighbors_url"])
    jsonschema.validate(doc, read_json(site / "api/v1/schema/neighbors.schema.json"))
    assert [b["name"] for b in doc["bands"]] == ["very_similar", "similar", "somewhat_similar"]
    assert [b["percentile"] for b in doc["bands"]] == [99.9, 99.0, 95.0]
    floors = [b["min_similarity"] for b in doc["bands"]]
    assert floors == sorted(floors, reverse=True)
    copy = next(n for n in doc["neighbors"] if n["id"] == NEAR_COPY)
    assert copy["band"] == "very_similar" and copy["copy"]
    for n in doc["neighbors"]:  # each neighbour's band is the one its similarity reaches
        expected = next((b["name"] for b in doc["bands"] if n["similarity"] > b["min_similarity"]), None)
        assert n["band"] == expected
    similar, _ = _sections((site / items[ORIGINAL.stem]["url"]).read_text(encoding="utf-8"))
    assert similar[0] == items[NEAR_COPY]["slug"]


@pytest.mark.slow
def test_unrelated_pictures_are_not_called_similar_but_folded(site: Path, site_items, read_json) -> None:
    items = site_items(site)
    unrelated = {p.stem for p in UNRELATED}
    for stem in unrelated:
        doc = read_json(site / items[stem]["neighbors_url"])
        assert [n["band"] for n in doc["neighbors"]] == [None] * len(doc["neighbors"]), stem
        page = (site / items[stem]["url"]).read_text(encoding="utf-8")
        similar, folded = _sections(page)
        assert similar == [] and "Ingen bild i samlingen liknar den här" in page
        assert len(folded) == len(doc["neighbors"]) and "<summary>Fler bilder" in page
    # Nor are they called similar on the pages of the old photographs.
    for p in [ORIGINAL, *PHOTOS]:
        similar, _ = _sections((site / items[p.stem]["url"]).read_text(encoding="utf-8"))
        assert not {items[u]["slug"] for u in unrelated} & set(similar), p.stem


@pytest.mark.slow
def test_a_changed_calibration_makes_the_item_pages_again(site: Path, site_items, cli, read_json) -> None:
    items = site_items(site)
    page = site / items[ORIGINAL.stem]["url"]
    before = page.read_text(encoding="utf-8")
    settings = settings_for_folder(site.parent / "collection", site)
    model = descriptor_model_id(settings.model)
    with StateStore(settings.state_dir) as store:
        stored = store.calibrations(model)["photographs"]
        # As if random pairs were far less alike: every neighbour is now "very similar".
        store.put_calibration(model, "photographs", {**stored, "quantiles": {p: -1.0 for p in stored["quantiles"]}})
    run = cli("render", "--images", str(site.parent / "collection"), "--out", str(site), "-q")
    assert run.code == 0, run.err
    after = page.read_text(encoding="utf-8")
    similar, folded = _sections(after)
    doc = read_json(site / items[ORIGINAL.stem]["neighbors_url"])
    assert len(similar) == len(doc["neighbors"]) and folded == []
    assert {n["band"] for n in doc["neighbors"]} == {"very_similar"}
    assert [b["min_similarity"] for b in doc["bands"]] == [-1.0] * 3


@pytest.mark.slow
def test_without_site_url_no_sitemap_is_written_and_the_summary_says_why(site: Path, cli) -> None:
    run = cli("render", "--images", str(site.parent / "collection"), "--out", str(site))
    assert run.code == 0, run.err
    notes = [line for line in run.err.splitlines() if "sitemap" in line]
    assert notes == ["Note: no sitemap.xml: site.url is not set, and a sitemap needs the absolute addresses "
                     "of the pages"]
    assert not (site / "sitemap.xml").exists()


# -- the calibration, without a model ----------------------------------------------------------


def test_the_percentiles_never_call_more_pairs_similar_than_they_promise() -> None:
    rng = np.random.default_rng(0)
    for n in (3, 10, 999, 1000, 5000):
        values = rng.uniform(0, 1, n)
        calibration = calibrate(values)
        assert calibration.pairs == n
        for name, p in BANDS:
            beyond = int((values > calibration.quantiles[p]).sum())
            assert beyond <= n * (100 - p) / 100 + 1e-9, (n, name, beyond)
    # Fewer than a thousand pairs: nothing is beyond the 99.9th percentile (the largest).
    assert calibrate(np.array([0.1, 0.5, 0.3])).band(0.5) is None
    assert calibrate(np.array([])) is None


def test_bands_are_the_first_whose_floor_a_similarity_exceeds() -> None:
    calibration = Calibration(10_000, {50.0: 0.3, 90.0: 0.5, 95.0: 0.55, 99.0: 0.6, 99.5: 0.65, 99.9: 0.7})
    assert [calibration.band(s) for s in (0.71, 0.7, 0.61, 0.6, 0.56, 0.55, 0.1)] == [
        "very_similar", "similar", "similar", "somewhat_similar", "somewhat_similar", None, None]
    assert Calibration.from_json(json.loads(json.dumps(calibration.to_json()))) == calibration


def test_random_pairs_leave_out_copies_and_are_the_same_on_every_run() -> None:
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(40, 16)).astype(np.float32)
    vectors[1] = vectors[0] * 3  # a copy of item 0 (length does not matter)
    every = random_pair_similarities(vectors)
    assert len(every) == 40 * 39 // 2 and every.max() == pytest.approx(1.0)
    without = random_pair_similarities(vectors, [(1, 0)])
    assert len(without) == len(every) - 1 and without.max() < 0.99
    # Past the limit: the pairs between two disjoint samples, drawn with the seed.
    sampled = random_pair_similarities(vectors, [(0, 1)], seed=7, all_pairs_up_to=12)
    assert len(sampled) in (144, 143)
    assert np.array_equal(sampled, random_pair_similarities(vectors, [(0, 1)], seed=7, all_pairs_up_to=12))


def test_a_category_keeps_its_calibration_while_measuring_it_again_moves_it_less_than_noise() -> None:
    rng = np.random.default_rng(3)
    vectors = np.abs(rng.normal(size=(6000, 64))) + 0.4
    kept = calibrate(random_pair_similarities(vectors[:5000], seed=7))
    # A tenth more pictures from the same distribution: the levels move by sampling noise alone.
    grown = calibrate(random_pair_similarities(vectors, seed=7))
    assert grown != kept and settled(kept, grown) is kept
    # A category whose pictures changed: measured again, the new calibration is taken.
    changed = calibrate(random_pair_similarities(np.abs(rng.normal(size=(6000, 64))), seed=7))
    assert settled(kept, changed) is changed
    # Small moves do not add up: each is compared with the calibration in use.
    drifted = Calibration(kept.pairs, {p: q + KEEP_WITHIN * 0.8 for p, q in kept.quantiles.items()})
    assert settled(kept, drifted) is kept
    assert settled(kept, Calibration(kept.pairs, {p: q + KEEP_WITHIN * 1.6 for p, q in kept.quantiles.items()})) \
        is not kept
    assert settled(None, grown) is grown and settled(kept, None) is None


def test_a_category_grown_by_one_percent_is_measured_on_nearly_the_same_pairs() -> None:
    """The samples of random pairs are chosen by a hash of each item's id, so a weekly
    rebuild that adds 1 % measures nearly the same pairs: the calibration in use is kept
    (a new one would change every page of the category for no visible reason)."""
    from archive_sim.calibration import calibrate, random_pair_similarities, settled, stable_samples

    keys = [f"item-{n}" for n in range(10_000)]
    grown = keys + [f"new-{n}" for n in range(100)]
    rows, cols = stable_samples(keys, 42, 2048)
    rows2, cols2 = stable_samples(grown, 42, 2048)
    assert len(rows) == len(cols) == 2048 and not set(rows) & set(cols)
    assert len(set(rows) - set(rows2)) + len(set(cols) - set(cols2)) <= 100
    rng = np.random.default_rng(1)
    motifs = rng.random((300, 64))
    vectors = motifs[rng.integers(0, 300, len(grown))] + 0.3 * rng.random((len(grown), 64))
    before = calibrate(random_pair_similarities(vectors[:10_000], seed=42, keys=keys))
    after = calibrate(random_pair_similarities(vectors, seed=42, keys=grown))
    assert before is not None and after is not None and after != before
    assert settled(before, after) is before
