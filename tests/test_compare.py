"""Model comparison: two real pretrained backbones (EfficientNet-Lite0 and -Lite2, both
offline) embed the same images, and ``archive-sim compare`` counts the top-k neighbours
they share, item by item, with a page of the items they disagree on most."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from archive_sim.state_store import StateStore
from archive_sim.commands.compare import agreement, top_k
from archive_sim.config import settings_for_folder
from archive_sim.embed.descriptors import descriptor_model_id

from repo_images import PHOTOGRAPHS, figures

PHOTOS = [PHOTOGRAPHS / n for n in ("1850Geography.jpg", "1880Paris.jpg", "1888Slum.jpg",
                                    "1890CliffHouseSF.jpg", "1896NewsBoyGirl.jpg", "1948CarsGrandma.jpg")]
FIGURES = figures()[:5]
MODELS = ("efficientnet_lite0", "efficientnet_lite2")


@pytest.fixture(scope="module")
def compared(tmp_path_factory, make_collection, cli):
    root = tmp_path_factory.mktemp("compare")
    make_collection(root, {"photographs": PHOTOS, "illustrations": FIGURES})
    common = ["--images", str(root / "collection"), "--out", str(root / "site")]
    run = cli("fetch", *common, "-q")
    assert run.code == 0, run.err
    return root, common


@pytest.mark.slow
def test_two_real_backbones_are_compared_item_by_item(compared, cli) -> None:
    root, common = compared
    page = root / "disagree.html"
    run = cli("compare", "--model", MODELS[0], "--model", MODELS[1], "-k", "4", "--json", "--html", str(page),
              *common)
    assert run.code == 0, run.err
    doc = json.loads(run.out)
    n = len(PHOTOS) + len(FIGURES)
    assert doc["k"] == 4 and doc["items"] == n
    assert [row["shared"] for row in doc["shared"]] == [4, 3, 2, 1, 0]
    assert sum(row["items"] for row in doc["shared"]) == n
    assert sum(row["share"] for row in doc["shared"]) == pytest.approx(1.0, abs=1e-3)
    # The lists re-ranked by local matches are compared too, item by item.
    reranked = doc["reranked"]
    assert reranked["candidates"] == 10 and sum(row["items"] for row in reranked["shared"]) == n
    assert set(reranked["per_item"]) == set(doc["per_item"])
    assert all(0 <= v <= 4 for v in reranked["per_item"].values())
    assert doc["models"][0].startswith("efficientnet_lite0/") and doc["models"][1].startswith("efficientnet_lite2/")

    # The same counts from the stored vectors, by plain numpy: each model really ranked.
    settings = settings_for_folder(root / "collection", root / "site")
    shared = {}
    with StateStore(settings.state_dir) as store:
        items = store.items()
        tops = []
        for name in MODELS:
            mid = descriptor_model_id(settings.model.model_copy(update={"name": name}))
            assert mid in doc["models"] and not store.missing_vectors(mid, [it.content_hash for it in items])
            vectors = store.vectors(mid, [it.content_hash for it in items]).astype(np.float64)
            top = {}
            for i, it in enumerate(items):
                same = [j for j, o in enumerate(items) if o.category == it.category and j != i]
                order = sorted(same, key=lambda j: -float(vectors[i] @ vectors[j]))
                top[it.id] = {items[j].id for j in order[:4]}
            tops.append(top)
        assert tops[0] != tops[1]  # two different networks do not rank everything alike
        for it in items:
            shared[it.id] = len(tops[0][it.id] & tops[1][it.id])
    assert doc["per_item"] == shared
    expected = [sum(1 for v in shared.values() if v == s) for s in (4, 3, 2, 1, 0)]
    assert [row["items"] for row in doc["shared"]] == expected
    assert doc["mean_shared"] == pytest.approx(np.mean(list(shared.values())), abs=1e-4)

    # The items they disagree on most come first, on the page and in the JSON.
    worst = [d["id"] for d in doc["disagreements"]]
    assert [shared[i] for i in worst] == sorted(shared[i] for i in worst)
    html = page.read_text(encoding="utf-8")
    assert html.count("data:image/jpeg;base64,") >= n
    rows = html.split('<section class="row">')[1:]
    assert [re.search(r"<figcaption>([^<]*)</figcaption>", row).group(1) for row in rows] == worst
    assert re.search(r"<td>4/4</td><td>\d+</td>", html)


@pytest.mark.slow
def test_the_table_reads_like_a_report_and_vectors_are_reused(compared, cli, monkeypatch) -> None:
    import archive_sim.commands.compare as command

    def no_model(*args):
        raise AssertionError("a model was loaded although every vector is cached")

    monkeypatch.setattr(command, "load_descriptor", no_model)
    root, common = compared
    run = cli("compare", "--model", MODELS[0], "--model", MODELS[1], "--html", str(root / "again.html"), *common)
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    assert lines[0] == f"{MODELS[0]} vs {MODELS[1]}: top-4 neighbours shared, {len(PHOTOS) + len(FIGURES)} items"
    assert [line.split()[0] for line in lines[2:7]] == ["4/4", "3/4", "2/4", "1/4", "0/4"]
    assert all(line.split()[2].endswith("%") for line in lines[2:7])
    assert lines[7].startswith("mean shared: ")
    assert lines[9] == "Re-ranked by local matches (the first 10 of each list checked):"
    assert lines[10] == lines[0] and lines[17].startswith("mean shared: ")
    assert str(root / "again.html") in run.out


@pytest.mark.slow
@pytest.mark.parametrize("args, code, message", [
    (["--model", "efficientnet_lite0"], 1, "give exactly two --model options (got 1)"),
    (["--model", "efficientnet_lite0", "--model", "efficientnet_lite0"], 1, "--model efficientnet_lite0 twice"),
    (["--model", "efficientnet_lite0", "--model", "ResNet5O"], 2, "model.name: 'ResNet5O' is not one of"),
])
def test_bad_arguments_say_what_is_wrong(compared, cli, args, code: int, message: str) -> None:
    _, common = compared
    run = cli("compare", *args, *common)
    assert run.code == code and message in run.err and len(run.err.strip().splitlines()) == 1, run.err


def test_agreement_counts_shared_neighbours() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(12, 16))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [f"i{j:02d}" for j in range(12)]
    categories = ["a"] * 8 + ["b"] * 4
    same = top_k(vectors, ids, categories, 3)
    assert all(i not in same[i] and len(same[i]) == 3 for i in ids)
    assert all({categories[ids.index(o)] for o in same[i]} == {categories[ids.index(i)]} for i in ids)
    result = agreement(same, same, 3)
    assert result.counts() == [0, 0, 0, 12] and result.mean_shared() == 3.0
    # Another model (other vectors) agrees less, and is listed from the least shared.
    other = vectors + rng.normal(size=vectors.shape)
    other /= np.linalg.norm(other, axis=1, keepdims=True)
    mixed = agreement(same, top_k(other, ids, categories, 3), 3)
    assert sum(mixed.counts()) == 12 and mixed.counts()[3] < 12
    worst = mixed.disagreements(5)
    assert [mixed.shared[i] for i in worst] == sorted(mixed.shared[i] for i in worst)
    assert mixed.shared[worst[0]] == min(mixed.shared.values())
