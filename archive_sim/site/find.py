"""The "Find by image" part of the site: its page, the model file and the search data.

Input: the settings, the site model, the state store (vectors, pHashes, the
whitening beside the indexes) and the output tree. Output, when ``site.find`` is on
and its parts are there (``unavailable``): ``find/index.html``; the descriptor as
ONNX (``find/model-<key>.onnx``, exported once per model into
``<state>/find/`` and linked from there on); per category the compact search data
(``find/<slug>.json`` and ``find/<slug>.<fingerprint>.bin``) and the cards the page
shows (``find/<slug>.cards.json``); and ``find/model.json``, which names them all
(docs/json-api.md). A category whose inputs are unchanged keeps its files unmade.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import search_data
from ..config import Settings
from ..embed.descriptors import WHITENING_FILE, Whitening
from ..fsutil import atomic_write_bytes
from ..slugs import slugify
from .model import SiteModel
from .templates import builtin_dir

if TYPE_CHECKING:
    from ..state_store import StateStore
    from .pages import SiteWriter

PAGE = "find/index.html"
MANIFEST = "find/model.json"
# Static files that only the find page uses: left out of a site without it.
STATIC_PREFIXES = ("static/find/", "static/vendor/onnxruntime-web/")
RUNTIME = Path("static") / "vendor" / "onnxruntime-web"
# Results the page shows.
RESULTS = 12


def runtime_dir(theme_dir: Path | None) -> Path | None:
    """The vendored onnxruntime-web (a theme's, else the built-in one), or None."""
    for root in ([theme_dir] if theme_dir is not None else []) + [builtin_dir()]:
        if (root / RUNTIME / "VERSION").is_file():
            return root / RUNTIME
    return None


def unavailable(settings: Settings) -> str | None:
    """Why the site goes without the find page (a one-line reason), or None when it has one.

    Cheap and the same in every process: no module is imported.
    """
    if not settings.site.find:
        return "site.find is off"
    from ..embed.efficientnet_lite import LITE_VARIANTS

    model = settings.model
    if model.name not in LITE_VARIANTS or model.weights != "imagenet":
        return (f"model.name = {model.name!r} with weights {model.weights!r}: only the EfficientNet-Lite "
                "backbones with their bundled weights run in the browser")
    missing = [name for name in ("onnx", "onnxruntime") if importlib.util.find_spec(name) is None]
    if missing:
        return f"{' and '.join(missing)} not installed: pip install 'archive-sim[find]'"
    if runtime_dir(settings.site.theme_dir) is None:
        return "onnxruntime-web is not vendored into the templates' static files: run 'make vendor-web'"
    return None


def export_key(model_id: str, whitening: Whitening | None) -> str:
    """What the exported graph depends on: the model id, the whitening and the exporter's code."""
    from ..embed import onnx_export

    digest = hashlib.sha256(f"{model_id}\0{whitening.fingerprint() if whitening else 'raw'}\0".encode())
    digest.update(Path(onnx_export.__file__).read_bytes())
    return digest.hexdigest()[:16]


def cached_model(settings: Settings, whitening: Whitening | None, key: str) -> tuple[Path, int, int]:
    """The ONNX file (float16 weights) of the build's descriptor, its input side and its
    vector's length; exported once per ``key`` into ``<state>/find/`` (older exports
    there are removed)."""
    import json

    folder = settings.state_dir / "find"
    path, shape = folder / f"model-{key}.onnx", folder / f"model-{key}.json"
    if not (path.is_file() and shape.is_file()):
        from ..embed.onnx_export import export_descriptor, to_float16

        exported = export_descriptor(settings.model, whitening)
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, to_float16(exported.proto).SerializeToString())
        atomic_write_bytes(shape, json.dumps({"input_size": exported.input_size, "dim": exported.dim}).encode())
        for old in folder.glob("model-*"):
            if old not in (path, shape):
                old.unlink(missing_ok=True)
    size = json.loads(shape.read_text("utf-8"))
    return path, int(size["input_size"]), int(size["dim"])


def page_context() -> dict[str, Any]:
    """What ``find.html`` sees besides what every page sees (docs/themes.md)."""
    return {"find": {"manifest_url": MANIFEST, "worker_url": "static/find/find-worker.js", "results": RESULTS}}


class _CategoryData:
    """One category's search data files (header, binary), made only when asked and once."""

    def __init__(self, store: StateStore, model_id: str, whitening: Whitening | None, members: list[Any],
                 hashes: list[int | None], binary_name: str) -> None:
        self._args = (store, model_id, whitening, members, hashes, binary_name)

    @functools.cached_property
    def files(self) -> tuple[str, bytes]:
        store, model_id, whitening, members, hashes, binary_name = self._args
        vectors = store.vectors(model_id, [it.content_hash for it in members])
        if whitening is not None:
            vectors = whitening.apply(vectors)
        data = search_data.build([it.id for it in members], vectors, hashes)
        header, binary = search_data.to_files(data, binary_name, model_id)
        return search_data.header_json(header) + "\n", binary


def cards_document(model: SiteModel, category: str, items: list[Any], map_url: str,
                   labels: dict[str, str]) -> dict[str, Any]:
    """``find/<slug>.cards.json``: what the page shows of each item of a category, in the
    order of its search data, and the category's similarity bands (as its item pages
    word similarity: the calibration of random pairs, highest band first)."""
    info = model.category_by_name[category]
    cards = []
    for it in items:
        card = model.card(it)
        cards.append({"id": it.id, "slug": it.slug, "title": it.title, "url": card["url"],
                      "thumbnail": {"src": card["thumb"]["src"], "width": card["thumb"]["width"],
                                    "height": card["thumb"]["height"]}})
    return {"format": search_data.FORMAT,
            "category": {**info.as_link(), "map_url": map_url, "bands": model.bands(category, labels)},
            "items": cards}


def write_find(writer: SiteWriter, store: StateStore) -> None:
    """The find page and its files (see the module docstring) into ``writer``'s tree."""
    settings, model, tree, t = writer.settings, writer.model, writer.tree, writer.t
    whitening_file = settings.state_dir / "index" / slugify(model.model_id) / WHITENING_FILE
    whitening = Whitening.load(whitening_file) if settings.model.descriptor.whiten and whitening_file.exists() else None
    key = export_key(model.model_id, whitening)
    model_file = f"find/model-{key}.onnx"
    exported, input_size, dim = cached_model(settings, whitening, key)
    tree.put(model_file, key, exported.read_bytes)

    # The search data's space: the model's vectors, whitened or not.
    space = f"{model.model_id}|{whitening.fingerprint() if whitening else 'raw'}"
    phashes = store.phashes(it.content_hash for it in model.items)
    members_of: dict[str, list[Any]] = {c.name: [] for c in model.categories}
    for it in model.items:
        members_of[it.category].append(it)
    categories = []
    for category in model.categories:
        members, slug = members_of[category.name], category.slug
        hashes = [phashes.get(it.content_hash) for it in members]
        fingerprint = search_data.fingerprint(space, [it.id for it in members],
                                              [it.content_hash for it in members], hashes)
        # The binary's name changes with its content, so a browser never pairs a
        # header with another build's binary from its cache.
        binary = f"{slug}.{fingerprint[:12]}.bin"
        data = _CategoryData(store, model.model_id, whitening, members, hashes, binary)
        # put calls its maker at once or not at all: the lambdas see this loop's data.
        tree.put(f"find/{binary}", fingerprint, lambda: data.files[1])
        tree.put(f"find/{slug}.json", fingerprint, lambda: data.files[0])
        # Keyed by its inputs, as an item page: made only when one of its items changed.
        writer.json_of_inputs(f"find/{slug}.cards.json", "find-cards", model.category_cards_inputs(category.name, members),
                              lambda: cards_document(model, category.name, members, f"map/{slug}/index.html", t))
        categories.append((category.name, f"find/{slug}.json", len(members)))

    manifest = search_data.manifest(model.model_id, model_file, input_size, dim, settings.copies.hash_distance,
                                    settings.copies.similarity, categories)
    for entry, category in zip(manifest["categories"], model.categories):
        entry["cards"] = f"find/{category.slug}.cards.json"
        entry["label"] = category.label
    writer.json(MANIFEST, manifest)
    site = settings.site
    writer.page("find.html", PAGE, f"{t['find_title']} – {site.title}", page_context(), t["find_description"])


def static_filter(find_on: bool) -> Callable[[str], bool]:
    """Which static files a site carries: without the find page, none of its assets."""
    if find_on:
        return lambda rel: True
    return lambda rel: not rel.startswith(STATIC_PREFIXES)
