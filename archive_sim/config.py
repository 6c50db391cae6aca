"""Settings: config.yaml -> one validated, typed ``Settings`` object.

Input: a YAML file (or plain defaults for ``--images DIR --out SITE``) and the
registered source types and backbones (``plugins``). Output: ``Settings`` with every
path made absolute against the config file's folder. The ``source:`` and ``model:``
sections take the settings model of the source type or backbone they name
(``settings_model`` builds the schema from the registries). Validation happens once,
here; an invalid file raises ``ConfigError`` whose message is one line naming the
key, the value and what was expected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union
from urllib.parse import urlsplit

import yaml
from pydantic import (BaseModel, Discriminator, Field, PrivateAttr, Tag, ValidationError, ValidationInfo,
                      create_model, field_validator)

from .settings_base import Section, http_url
from .sources.local import LocalSourceSettings

if TYPE_CHECKING:
    from .plugins import Plugin, Plugins, Registry


class ConfigError(ValueError):
    """A configuration problem, already phrased for the user in one line."""


class SiteSettings(Section):
    """The site as visitors see it."""

    title: str = Field("Bildarkiv", description="The site's name, on every page.")
    language: Literal["sv", "en"] = Field("sv", description="The language of the site's own texts.")
    description: str = Field("", description="A sentence about the collection, on the start page.")
    items_per_page: int = Field(48, ge=1, le=1000, description="Items on each page of a category listing.")
    category_labels: dict[str, str] = Field(
        default_factory=dict, description="Category name (the folder or source value) -> the label visitors see.")
    url: str | None = Field(
        None, description="Where the site is published (https://example.org/archive/): absolute URLs in "
                          "sitemap.xml and canonical links, and the root the 404 page links from.")
    processes: int = Field(
        2, ge=1, le=64, description="Processes drawing map atlases and writing item pages (from 1,500 items); "
                                    "rendering is pure Python, one core each.")
    find: bool = Field(
        True, description="The \"Find by image\" page (find/): visitors search the collection with a picture of "
                          "their own, in their browser. Needs the find extra (onnx, onnxruntime) and onnxruntime-web "
                          "vendored (make vendor-web); without them the render says so in one line and leaves "
                          "the page out.")
    search: bool = Field(
        True, description="A search box on every page and a search page (search/), from a static Pagefind "
                          "index of every item's title and metadata; needs the pagefind package with its binary.")
    theme_dir: Path | None = Field(
        None, description="A folder of templates and static/ files that override the built-in ones by name "
                          "(see docs/themes.md); relative to the config file.")

    @field_validator("url")
    @classmethod
    def _site_url(cls, value: str | None) -> str | None:
        return None if value is None else http_url(value.rstrip("/") + "/")


class FetchSettings(Section):
    """How remote sources are downloaded (unused for a local folder)."""

    concurrency: int = Field(8, ge=1, le=64, description="Downloads at once.")
    timeout: float = Field(30.0, gt=0, le=600,
                           description="Seconds to wait for a connection, and between bytes of a response.")
    retries: int = Field(4, ge=0, le=20, description="Retries after connection errors, timeouts, 429 and 5xx.")
    backoff: float = Field(1.0, ge=0, le=300, description="Seconds of the first wait before a retry, doubled each time.")
    max_retry_after: float = Field(300.0, ge=0,
                                   description="The longest Retry-After honoured, in seconds; longer fails the item.")
    rate_limit: float = Field(10.0, ge=0, description="Requests per second to one host (0: no limit).")
    contact: str | None = Field(
        None, description="An e-mail address or URL named in the User-Agent; required for remote sources.")
    max_image_bytes: int = Field(50_000_000, ge=1_000, description="The largest image downloaded, in bytes.")
    max_redirects: int = Field(5, ge=0, le=30, description="Redirects followed per request.")
    max_shrink: float = Field(0.2, ge=0, le=1,
                              description="The share of items a source may lose before the build stops "
                                          "(--allow-shrink accepts it once).")
    deadline: float | None = Field(
        None, gt=0, le=86_400,
        description="Seconds one download may take, retries and redirects included "
                    "(null: 60 s plus 4 s per MB of max_image_bytes).")
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="Origins (http://host:port) that may be on a loopback, private or other non-public address, "
                    "besides the source's own.")

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for url in value:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.path.strip("/") \
                    or parts.query or parts.fragment:
                raise ValueError(f"{url!r}: expected an origin such as http://10.0.0.5:8080 (no path)")
        return value

    @property
    def download_deadline(self) -> float:
        """``deadline``, or one that scales with the largest image: 250 kB/s at the least, plus a minute."""
        return self.deadline if self.deadline is not None else 60.0 + self.max_image_bytes / 250_000


class DescriptorSettings(Section):
    """How the backbone's feature map becomes one vector per image (see embed/descriptors.py).

    The defaults scored best on the shipped ground truth ("Finding the same picture"
    in the docs); ``pooling: avg`` with one scale, rgb, no descreen and no whitening
    is the classifier's own global average pooling.
    """

    pooling: Literal["avg", "gem"] = Field("gem", description="avg: average pooling; gem: generalized mean.")
    gem_p: float = Field(3.0, ge=1.0, le=16.0, description="The generalized-mean exponent (1 is the average).")
    scales: list[float] = Field(
        default_factory=lambda: [1.414, 1.0, 0.707], min_length=1, max_length=4,
        description="Image sizes relative to the model's input size (0.25 to 2); each is pooled, the results summed.")
    colour: Literal["rgb", "gray"] = Field(
        "rgb", description="gray: black-and-white and colour prints of a picture meet.")
    descreen: float = Field(0.0, ge=0.0, le=4.0,
                            description="A Gaussian blur (pixels at scale 1) against halftone dots; 0: none.")
    whiten: bool = Field(False, description="PCA whitening learned on the collection at index time.")

    @field_validator("scales")
    @classmethod
    def _scales(cls, value: list[float]) -> list[float]:
        if any(not 0.25 <= s <= 2.0 for s in value):
            raise ValueError("each scale must be between 0.25 and 2.0")
        if len(set(value)) != len(value):
            raise ValueError("scales must differ from each other")
        return sorted(value, reverse=True)


class ModelSettings(Section):
    """The CNN that embeds the images; a backbone with settings of its own subclasses this."""

    name: str = Field("efficientnet_lite0", description="The backbone (`archive-sim plugins` lists them).")
    weights: str = Field(
        "imagenet", description='"imagenet" (bundled for EfficientNet-Lite, downloaded by Keras otherwise), '
                                'a path to a local .weights.h5 / .h5 file, or "none" for random weights.')
    batch_size: int = Field(32, ge=1, le=1024, description="Images embedded at once.")
    workers: int = Field(2, ge=1, le=64, description="Threads decoding and resizing images.")
    scheduler: str | None = Field(
        None, pattern=r"^(local|(tcp|tls|ucx|inproc)://\S+)$",
        description='Where batches are embedded: null, in this process; "local", a Dask cluster on this '
                    'machine; "tcp://host:8786", the scheduler of a Dask cluster whose workers can read the '
                    "image paths (pip install 'archive-sim[distributed]').")
    descriptor: DescriptorSettings = Field(DescriptorSettings(), description="How features become one vector.")
    _backbones: "Registry | None" = PrivateAttr(None)

    @property
    def backbones(self) -> "Registry | None":
        """The registry ``name`` was checked against (None: the default one)."""
        return self._backbones


class NeighborSettings(Section):
    """The neighbour lists of item pages."""

    k: int = Field(30, ge=1, le=1000, description="Neighbours kept per item.")
    # 50 trees keep recall@10 at 0.99 up to 50,000 items a category (bench/scale.py);
    # 10 gave 0.96 from 25,000. Small collections lose nothing but a little index time.
    trees: int = Field(50, ge=1, le=1000, description="Trees of each Annoy index: more find true neighbours "
                                                        "more often and take longer to build.")
    duplicate_threshold: float = Field(0.9999, gt=0, le=1,
                                       description="Cosine similarity from which a neighbour is marked a duplicate of the item.")


class CopiesSettings(Section):
    """When a neighbour is "the same picture" (copy_detection.py); null turns a test off."""

    hash_distance: int | None = Field(
        7, ge=0, le=32, description="The largest Hamming distance between two 64-bit perceptual hashes (pHash).")
    similarity: float | None = Field(
        0.93, gt=0, le=1, description="The smallest cosine similarity of the descriptors.")


class RerankSettings(Section):
    """The second stage of the neighbour lists: local evidence of the same composition
    (local_matching.py; the defaults are chosen on the ground truth, docs/same-picture.md)."""

    enabled: bool = Field(True, description="Re-rank each neighbour list by local matches; false: by "
                                            "similarity alone.")
    candidates: int = Field(10, ge=1, le=1000, description="Neighbours of each list that are checked, "
                                                          "from the first.")
    min_matches: int = Field(8, ge=4, le=10000, description='Agreeing keypoint matches that confirm a '
                                                           'neighbour ("matched": the same motif).')
    method: Literal["sift", "sift-edges", "orb"] = Field(
        "sift-edges", description="Keypoints: sift-edges (SIFT on the gradient magnitude, blind to which side "
                                  "of a line is dark), sift (on the gray image) or orb (faster, finds fewer).")
    geometry: Literal["affine", "homography"] = Field(
        "affine", description="The geometry that the matches must agree on (RANSAC).")
    side: int = Field(384, ge=64, le=4096, description="Images are matched at this long side, in pixels.")
    features: int = Field(300, ge=16, le=20000, description="Keypoints kept per image, strongest first.")
    ratio: float = Field(0.8, gt=0, le=1, description="Lowe's ratio test: the best match must be this much "
                                                      "closer than the second.")
    tolerance: float = Field(0.03, gt=0, le=0.5, description="RANSAC tolerance, as a share of the long side "
                                                             "(a copyist's distortions).")


class MapSettings(Section):
    """The t-SNE maps."""

    perplexity: float = Field(30.0, gt=0, le=500, description="t-SNE perplexity: about how many neighbours "
                                                               "each point keeps close.")
    seed: int = Field(42, description="The random seed, so a layout can be made again.")
    thumbnail_size: int = Field(128, ge=16, le=1024, description="The side of a thumbnail, in pixels.")
    relayout_share: float = Field(
        0.25, ge=0, le=1, description="Above this share of new items a map is laid out again from scratch; "
                                      "below it, new items are placed into the map and nothing else moves.")


DEFAULT_SOURCE = "local"
DEFAULT_BACKBONE = "efficientnet_lite0"


class Settings(Section):
    """All of config.yaml: the sections, and the keys at its top level.

    ``source`` and ``model`` take the settings model of the registered source type
    and backbone they name (``settings_model`` makes the schema that checks them).
    """

    site: SiteSettings = Field(SiteSettings(), description="The site as visitors see it.")
    source: Any = Field(LocalSourceSettings(), description="Where the items come from; `type` names the kind.")
    fetch: FetchSettings = Field(FetchSettings(), description="How remote sources are downloaded.")
    model: ModelSettings = Field(ModelSettings(), description="The CNN that embeds the images.")
    neighbors: NeighborSettings = Field(NeighborSettings(), description="The neighbour lists of item pages.")
    copies: CopiesSettings = Field(CopiesSettings(), description='When a neighbour is "the same picture".')
    rerank: RerankSettings = Field(RerankSettings(), description="Neighbour lists re-ranked by local matches.")
    map: MapSettings = Field(MapSettings(), description="The t-SNE maps.")
    state_dir: Path = Field(Path(".archive-sim"), description="The state folder: catalogue, vectors, "
                                                              "thumbnails, layouts (relative to the config file).")
    output_dir: Path = Field(Path("site"), description="Where the site is published (relative to the config file).")
    compat: Literal["none", "arosenius"] = Field(
        "none", description="arosenius: also write nearest_neighbors/ and tsne_data/ as that archive's "
                            "frontend reads them.")
    _plugins: "Plugins | None" = PrivateAttr(None)

    @field_validator("compat")
    @classmethod
    def _compat(cls, value: str, info: ValidationInfo) -> str:
        neighbors = info.data.get("neighbors")
        if value == "arosenius" and neighbors is not None and neighbors.k < 29:
            raise ValueError(f"needs neighbors.k of at least 29 (30 entries with the item itself), "
                             f"not {neighbors.k}")
        return value

    @property
    def plugins(self) -> "Plugins":
        """The source types and backbones these settings were checked against."""
        if self._plugins is not None:
            return self._plugins
        from .plugins import default_plugins

        return default_plugins()

    def resolved(self, base: Path) -> "Settings":
        """Return a copy with every relative path anchored at ``base``."""

        def anchor(p: Path | None) -> Path | None:
            return None if p is None else (p if p.is_absolute() else (base / p)).resolve()

        paths = {name: anchor(getattr(self.source, name)) for name in type(self.source).model_fields
                 if isinstance(getattr(self.source, name), Path)}
        source = self.source.model_copy(update=paths)
        site = self.site.model_copy(update={"theme_dir": anchor(self.site.theme_dir)})
        return self.model_copy(update={"source": source, "site": site, "state_dir": anchor(self.state_dir),
                                       "output_dir": anchor(self.output_dir)})


# -- the schema, built from the registries ----------------------------------------------------
@dataclass(frozen=True)
class Schema:
    """A ``Settings`` model for one set of plugins, with the model of each source type and backbone."""

    settings: type[Settings]
    sources: dict[str, type[BaseModel]]
    backbones: dict[str, type[BaseModel]]
    plugins: "Plugins"


def _bind(plugin: "Plugin", key: str, description: str) -> type[BaseModel]:
    """The plugin's settings model with ``key`` (type or name) fixed to the plugin's name."""
    own = plugin.settings.model_fields.get(key)
    if key == "type" and own is not None and own.description:
        description = own.description
    return create_model(plugin.settings.__name__, __base__=plugin.settings, __module__=plugin.settings.__module__,
                        **{key: (Literal[plugin.name], Field(plugin.name, description=description))})


def _tag_reader(key: str, default: str):
    def tag(data: Any) -> str | None:
        if isinstance(data, dict):
            return str(data.get(key, default))
        return getattr(data, key, None)

    return tag


def _union(models: dict[str, type[BaseModel]], key: str, default: str) -> Any:
    tagged = tuple(Annotated[model, Tag(name)] for name, model in models.items())
    return Annotated[Union[tagged], Discriminator(_tag_reader(key, default))]  # type: ignore[valid-type]


@cache
def settings_model(plugins: "Plugins | None" = None) -> Schema:
    """The ``Settings`` model whose ``source`` and ``model`` accept what ``plugins`` register."""
    from .plugins import PluginError, default_plugins

    plugins = plugins or default_plugins()
    for registry, expected in ((plugins.sources, BaseModel), (plugins.backbones, ModelSettings)):
        for plugin in registry:
            if not (isinstance(plugin.settings, type) and issubclass(plugin.settings, expected)):
                raise PluginError(f"{registry.kind} {plugin.name!r} ({plugin.origin}): its settings are not "
                                  f"a subclass of {expected.__name__}")
            key = registry.key.rpartition(".")[2]
            if key not in plugin.settings.model_fields:
                raise PluginError(f"{registry.kind} {plugin.name!r} ({plugin.origin}): its settings model "
                                  f"{plugin.settings.__name__} has no {key!r} field")
    sources = {p.name: _bind(p, "type", p.description) for p in plugins.sources}
    backbones = {p.name: _bind(p, "name", ModelSettings.model_fields["name"].description or "")
                 for p in plugins.backbones}
    fields: dict[str, Any] = {}
    if sources:
        default = sources[DEFAULT_SOURCE]() if DEFAULT_SOURCE in sources else ...
        fields["source"] = (_union(sources, "type", DEFAULT_SOURCE),
                            Field(default, description=Settings.model_fields["source"].description))
    if backbones:
        name = DEFAULT_BACKBONE if DEFAULT_BACKBONE in backbones else next(iter(backbones))
        fields["model"] = (_union(backbones, "name", name),
                           Field(backbones[name](), description=Settings.model_fields["model"].description))
    model = create_model("Settings", __base__=Settings, __module__=__name__, **fields)
    return Schema(model, sources, backbones, plugins)


def _walk(loc: tuple[Any, ...], schema: Schema) -> tuple[list[str], type[BaseModel] | None]:
    """The location as the user wrote it (without union tags) and the model holding its last key."""
    shown: list[str] = []
    model: type[BaseModel] | None = schema.settings
    parts = list(loc)
    while parts:
        part = str(parts.pop(0))
        shown.append(part)
        if not parts:
            break
        if model is None or part not in model.model_fields:
            model = None
            continue
        variants = {"source": schema.sources, "model": schema.backbones}.get(part) if model is schema.settings else None
        if variants is not None:
            tag = str(parts.pop(0)) if parts and str(parts[0]) in variants else None
            model = variants.get(tag or "")
            continue
        annotation = model.model_fields[part].annotation
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    return shown, model


def _describe(error: dict[str, Any], schema: Schema) -> str:
    shown, parent = _walk(tuple(error["loc"]), schema)
    loc = ".".join(shown)
    kind = error["type"]
    if kind == "extra_forbidden":
        allowed = ", ".join(parent.model_fields) if parent is not None else "(none)"
        return f"{loc}: unknown key (expected one of: {allowed})"
    if kind == "union_tag_invalid":
        key, registry = (("type", schema.plugins.sources) if loc == "source"
                         else ("name", schema.plugins.backbones))
        return f"{loc}.{key}: {error['ctx']['tag']!r} is not one of {', '.join(registry.names())}"
    if kind == "union_tag_not_found":
        return f"{loc} = {error.get('input')!r}: expected a mapping of settings"
    if kind == "model_attributes_type" and loc in ("source", "model"):
        return f"{loc} = {error.get('input')!r}: expected a mapping of settings"
    value = error.get("input")
    shown_value = "(missing)" if kind == "missing" else repr(value)
    expected = error["msg"]
    expected = re.sub(r" or instance of \w+", "", expected.removeprefix("Value error, "))
    return f"{loc} = {shown_value}: {expected[0].lower() + expected[1:]}"


def _declared_classes(settings: Settings, plugins: "Plugins") -> Settings:
    """The same values in the classes the modules declare, not the ones ``settings_model`` made.

    The settings go to the render's spawned processes by pickle, which finds a class
    by its module and name: the generated ones have no such address.
    """

    def rebuilt(value: BaseModel, cls: type[BaseModel]) -> BaseModel:
        fields = {name: getattr(value, name) for name in cls.model_fields}
        return cls.model_construct(_fields_set=value.model_fields_set & set(fields), **fields)

    values = {name: getattr(settings, name) for name in Settings.model_fields}
    values["source"] = rebuilt(settings.source, plugins.sources.get(settings.source.type).settings)
    values["model"] = rebuilt(settings.model, plugins.backbones.get(settings.model.name).settings)
    return Settings.model_construct(_fields_set=settings.model_fields_set, **values)


def parse_settings(data: Any, origin: str, base: Path, plugins: "Plugins | None" = None) -> Settings:
    """Validate raw config data against the source types and backbones of ``plugins``
    (default: the built-ins and the installed entry points); ``origin`` names it in error messages."""
    from .plugins import PluginError

    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: expected a mapping of settings at the top level, found {type(data).__name__}")
    try:
        schema = settings_model(plugins)
    except PluginError as exc:
        raise ConfigError(f"{origin}: {exc}") from None
    try:
        settings = schema.settings.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        more = len(exc.errors()) - 1
        suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        raise ConfigError(f"{origin}: {_describe(first, schema)}{suffix}") from None
    if schema.plugins.sources.get(settings.source.type).remote and not (settings.fetch.contact or "").strip():
        raise ConfigError(f"{origin}: fetch.contact is not set: name an e-mail address or URL for the "
                          f"archive to reach you (it is sent in the User-Agent of every request)")
    settings = _declared_classes(settings, schema.plugins).resolved(base)
    settings._plugins = schema.plugins
    settings.model._backbones = schema.plugins.backbones
    return settings


def load_settings(path: Path) -> Settings:
    """Read and validate ``path``; relative paths inside are relative to its folder."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found (give --config, or --images DIR for a plain folder)") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{path}: line {line} is not UTF-8 text (byte 0x{raw[exc.start]:02x}); "
                          "save the file as UTF-8") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" line {mark.line + 1}"
        elif isinstance(exc, yaml.reader.ReaderError):  # a control character; no mark, only a position
            where = f" line {text.count(chr(10), 0, exc.position) + 1}"
        else:
            where = ""
        # Some YAML errors (ReaderError) have no ``problem`` and span several lines.
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}:{where} is not valid YAML: {problem}") from None
    return parse_settings(data, str(path), path.parent.resolve())


def settings_for_folder(images: Path, out: Path) -> Settings:
    """Defaults for ``--images DIR --out SITE``: state kept beside the site."""
    out = out.resolve()
    data = {
        "source": {"type": "local", "path": str(images.resolve())},
        "output_dir": str(out),
        "state_dir": str(out.parent / f".{out.name}.archive-sim"),
        "site": {"title": images.resolve().name or "Images"},
    }
    return parse_settings(data, "--images", Path.cwd())
