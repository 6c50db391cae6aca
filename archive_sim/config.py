"""Settings: config.yaml -> one validated, typed ``Settings`` object.

Input: a YAML file (or plain defaults for ``--images DIR --out SITE``). Output:
``Settings`` with every path made absolute against the config file's folder.
Validation happens once, here; an invalid file raises ``ConfigError`` whose message
is one line naming the key, the value and what was expected.
"""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Annotated, Any, Literal, Union
from urllib.parse import urlsplit

import yaml
from pydantic import (BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, ValidationInfo,
                      field_validator, model_validator)

from .sources.presets import apply_preset


class ConfigError(ValueError):
    """A configuration problem, already phrased for the user in one line."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SiteSettings(_Section):
    title: str = "Bildarkiv"
    language: Literal["sv", "en"] = "sv"
    description: str = ""
    items_per_page: int = Field(48, ge=1, le=1000)
    # Category name (the folder or source value) -> the label visitors see.
    category_labels: dict[str, str] = Field(default_factory=dict)
    # Where the site is published (https://example.org/archive/): absolute URLs in
    # sitemap.xml and canonical links, and the root that the 404 page links from.
    url: str | None = None
    # Processes drawing map atlases and writing item pages (from 1,500 items): rendering
    # is pure Python, one core each.
    processes: int = Field(2, ge=1, le=64)

    @field_validator("url")
    @classmethod
    def _site_url(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value.rstrip("/") + "/")


class LocalSourceSettings(_Section):
    type: Literal["local"] = "local"
    path: Path = Path("collection")
    metadata: Path | None = None
    categories: list[str] | None = None  # None: every subfolder
    follow_symlinks: bool = False        # follow links that lead out of path (default: skip them, with a reason)

    @field_validator("categories")
    @classmethod
    def _non_empty(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("an empty list would select nothing; leave it out for all folders")
        return value


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("expected an absolute http:// or https:// URL")
    return value


def _template(value: str | None, allowed: tuple[str, ...]) -> str | None:
    """Check that a URL template only uses the placeholders ``allowed``."""
    if value is None:
        return None
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
    except ValueError as exc:
        raise ValueError(f"not a valid template ({exc})") from None
    unknown = sorted(names - set(allowed))
    if unknown:
        raise ValueError(f"unknown placeholder {{{unknown[0]}}} (allowed: "
                         + ", ".join(f"{{{a}}}" for a in allowed) + ")")
    return value


class PaginationSettings(_Section):
    # none: one request; offset: offset/count; page: page number; next: a link in each response
    style: Literal["none", "offset", "page", "next"] = "none"
    size: int = Field(100, ge=1, le=100_000)         # records asked for per request
    size_param: str | None = "count"                 # query parameter carrying ``size`` (None: not sent)
    offset_param: str = "offset"
    page_param: str = "page"
    first_page: int = Field(1, ge=0)
    next: str = "next"                               # dotted path to the next page's URL (style next)
    total: str | None = None                         # dotted path to the total number of records, if given
    max_pages: int = Field(10_000, ge=1)             # a safety stop for APIs that never say "last page"


class RecordFields(_Section):
    """Dotted paths into one record (``images.0.image``: key, list index, key)."""

    id: str = "id"
    title: str = "title"
    image: str = "image"
    category: str | None = None   # used when there is no category_param
    link: str | None = None


class JsonApiSourceSettings(_Section):
    type: Literal["json_api"]
    preset: Literal["arosenius"] | None = None
    url: str                                          # the list endpoint
    params: dict[str, str] = Field(default_factory=dict)
    category_param: str | None = None                 # one listing per source category value
    # Source category value -> site category. With category_param: the values to ask
    # for. Without it: values of fields.category to keep (empty: keep all as they are).
    categories: dict[str, str] = Field(default_factory=dict, validate_default=True)
    pagination: PaginationSettings = PaginationSettings()
    records: str = ""                                 # dotted path to the list of records ("" = the response)
    fields: RecordFields = RecordFields()
    image_url: str | None = None                      # template with {image} and {id}; None: the field is a URL
    link_url: str | None = None                       # template with {id}: the item's page in the archive
    metadata: dict[str, str] = Field(default_factory=dict)  # site metadata key -> dotted path

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, data: Any) -> Any:
        return apply_preset(data) if isinstance(data, dict) else data

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _http_url(value)

    @field_validator("image_url")
    @classmethod
    def _image_url(cls, value: str | None) -> str | None:
        return _template(value, ("image", "id"))

    @field_validator("link_url")
    @classmethod
    def _link_url(cls, value: str | None) -> str | None:
        return _template(value, ("id",))

    @field_validator("categories")
    @classmethod
    def _categories(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        if info.data.get("category_param") and not value:
            raise ValueError(f"list the source values to ask for with {info.data['category_param']}= "
                             "and the site category of each, e.g. {Konstverk: artworks}")
        return value


class IiifSourceSettings(_Section):
    type: Literal["iiif"]
    url: str                                          # a IIIF collection (nested ones too) or one manifest
    # collection: the label of the collection holding the manifest; metadata: the
    # value of the metadata entry labelled category_label.
    category_from: Literal["collection", "metadata"] = "collection"
    category_label: str | None = Field(None, validate_default=True)
    categories: dict[str, str] = Field(default_factory=dict)  # source value -> site category (empty: all)
    id_label: str | None = None                       # metadata label holding the id (None: the manifest URL)
    image_size: int = Field(1024, ge=64, le=4096)     # longest side asked of the Image API

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _http_url(value)

    @field_validator("category_label")
    @classmethod
    def _label(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("category_from") == "metadata" and not value:
            raise ValueError("name the metadata label that holds the category (category_from is metadata)")
        return value


class CsvColumns(_Section):
    id: str = "id"
    category: str = "category"
    image: str = "image"
    title: str = "title"
    link: str = "link"


class CsvSourceSettings(_Section):
    type: Literal["csv"]
    path: Path = Path("items.csv")
    # Relative image values: URLs against base_url when set, otherwise paths
    # relative to the CSV file's folder.
    base_url: str | None = None
    columns: CsvColumns = CsvColumns()
    metadata: list[str] | None = None                 # columns kept as metadata (None: every other column)
    categories: dict[str, str] = Field(default_factory=dict)  # source value -> site category (empty: all)
    follow_symlinks: bool = False  # accept image paths (and links) leading out of the CSV's folder

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value)


SOURCE_TYPES = ("local", "json_api", "iiif", "csv")
REMOTE_SOURCE_TYPES = ("json_api", "iiif")


def _source_type(data: Any) -> str | None:
    if isinstance(data, dict):
        return data.get("type", "local")
    return getattr(data, "type", None)


SourceSettings = Annotated[
    Union[Annotated[LocalSourceSettings, Tag("local")], Annotated[JsonApiSourceSettings, Tag("json_api")],
          Annotated[IiifSourceSettings, Tag("iiif")], Annotated[CsvSourceSettings, Tag("csv")]],
    Discriminator(_source_type)]
SOURCE_MODELS: dict[str, type[_Section]] = {"local": LocalSourceSettings, "json_api": JsonApiSourceSettings,
                                            "iiif": IiifSourceSettings, "csv": CsvSourceSettings}


class FetchSettings(_Section):
    """How remote sources are downloaded (unused for a local folder)."""

    concurrency: int = Field(8, ge=1, le=64)          # downloads at once
    timeout: float = Field(30.0, gt=0, le=600)        # seconds to connect, and between bytes of a response
    retries: int = Field(4, ge=0, le=20)              # after connection errors, timeouts, 429 and 5xx
    backoff: float = Field(1.0, ge=0, le=300)         # first wait before a retry, doubled each time
    max_retry_after: float = Field(300.0, ge=0)       # longest Retry-After honoured; longer fails the item
    rate_limit: float = Field(10.0, ge=0)             # requests per second to one host (0: no limit)
    contact: str | None = None                        # e-mail or URL named in the User-Agent
    max_image_bytes: int = Field(50_000_000, ge=1_000)
    max_redirects: int = Field(5, ge=0, le=30)
    max_shrink: float = Field(0.2, ge=0, le=1)        # share of items a source may lose before the build stops
    # Seconds one download may take, retries included (None: 60 s plus 4 s per MB of max_image_bytes).
    deadline: float | None = Field(None, gt=0, le=86_400)
    # Origins (http://host:port) that may be on a loopback or private address besides the source's own.
    allowed_origins: list[str] = Field(default_factory=list)

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


class DescriptorSettings(_Section):
    """How the backbone's feature map becomes one vector per image (see embed/descriptors.py).

    The defaults scored best on the shipped ground truth (README, "Finding the same
    picture"); ``pooling: avg`` with one scale, rgb, no descreen and no whitening is the
    classifier's own global average pooling.
    """

    pooling: Literal["avg", "gem"] = "gem"
    gem_p: float = Field(3.0, ge=1.0, le=16.0)        # generalized-mean exponent (1 = average)
    # Image sizes relative to the model's input size; each is pooled, the results summed.
    scales: list[float] = Field(default_factory=lambda: [1.414, 1.0, 0.707], min_length=1, max_length=4)
    colour: Literal["rgb", "gray"] = "rgb"            # gray: black-and-white and colour prints meet
    descreen: float = Field(0.0, ge=0.0, le=4.0)      # Gaussian blur (pixels at scale 1) against halftone dots
    whiten: bool = False                               # PCA whitening learned on the collection at index time

    @field_validator("scales")
    @classmethod
    def _scales(cls, value: list[float]) -> list[float]:
        if any(not 0.25 <= s <= 2.0 for s in value):
            raise ValueError("each scale must be between 0.25 and 2.0")
        if len(set(value)) != len(value):
            raise ValueError("scales must differ from each other")
        return sorted(value, reverse=True)


class ModelSettings(_Section):
    name: str = "efficientnet_lite0"
    # "imagenet" (bundled for EfficientNet-Lite, downloaded by Keras otherwise),
    # a path to a local .weights.h5 / .h5 file, or "none" for random weights.
    weights: str = "imagenet"
    batch_size: int = Field(32, ge=1, le=1024)
    workers: int = Field(2, ge=1, le=64)
    # Where batches are embedded: None, in this process; "local", a Dask cluster on
    # this machine; "tcp://host:8786", the Dask scheduler of a cluster whose workers
    # can read the image paths (pip install 'archive-sim[distributed]').
    scheduler: str | None = Field(None, pattern=r"^(local|(tcp|tls|ucx|inproc)://\S+)$")
    descriptor: DescriptorSettings = DescriptorSettings()


class NeighborSettings(_Section):
    k: int = Field(30, ge=1, le=1000)
    # 50 trees keep recall@10 at 0.99 up to 50,000 items a category (bench/scale.py);
    # 10 gave 0.96 from 25,000. Small collections lose nothing but a little index time.
    trees: int = Field(50, ge=1, le=1000)
    duplicate_threshold: float = Field(0.9999, gt=0, le=1)


class CopiesSettings(_Section):
    """When a neighbour is "the same picture" (copies.py); null turns a test off."""

    # Largest Hamming distance between two 64-bit perceptual hashes (imagehash pHash).
    hash_distance: int | None = Field(7, ge=0, le=32)
    # Smallest cosine similarity of the descriptors (the neighbour lists' similarity).
    similarity: float | None = Field(0.93, gt=0, le=1)


class MapSettings(_Section):
    perplexity: float = Field(30.0, gt=0, le=500)
    seed: int = 42
    thumbnail_size: int = Field(128, ge=16, le=1024)
    # Above this share of new items a map is laid out again from scratch; below it,
    # new items are placed into the existing map and nothing else moves.
    relayout_share: float = Field(0.25, ge=0, le=1)


class Settings(_Section):
    site: SiteSettings = SiteSettings()
    source: SourceSettings = LocalSourceSettings()
    fetch: FetchSettings = FetchSettings()
    model: ModelSettings = ModelSettings()
    neighbors: NeighborSettings = NeighborSettings()
    copies: CopiesSettings = CopiesSettings()
    map: MapSettings = MapSettings()
    state_dir: Path = Path(".archive-sim")
    output_dir: Path = Path("site")
    # arosenius: also write nearest_neighbors/ and tsne_data/ as that archive's frontend reads them.
    compat: Literal["none", "arosenius"] = "none"

    @field_validator("compat")
    @classmethod
    def _compat(cls, value: str, info: ValidationInfo) -> str:
        neighbors = info.data.get("neighbors")
        if value == "arosenius" and neighbors is not None and neighbors.k < 29:
            raise ValueError(f"needs neighbors.k of at least 29 (30 entries with the item itself), "
                             f"not {neighbors.k}")
        return value

    def resolved(self, base: Path) -> "Settings":
        """Return a copy with every relative path anchored at ``base``."""

        def anchor(p: Path | None) -> Path | None:
            return None if p is None else (p if p.is_absolute() else (base / p)).resolve()

        paths = {name: anchor(getattr(self.source, name)) for name in ("path", "metadata")
                 if isinstance(getattr(self.source, name, None), Path)}
        source = self.source.model_copy(update=paths)
        return self.model_copy(
            update={"source": source, "state_dir": anchor(self.state_dir), "output_dir": anchor(self.output_dir)}
        )


def _walk(loc: tuple[Any, ...]) -> tuple[list[str], type[BaseModel] | None]:
    """The location as the user wrote it (without union tags) and the model holding its last key."""
    shown: list[str] = []
    model: type[BaseModel] | None = Settings
    parts = list(loc)
    while parts:
        part = str(parts.pop(0))
        shown.append(part)
        if not parts:
            break
        if model is None or part not in model.model_fields:
            model = None
            continue
        if model is Settings and part == "source":
            tag = str(parts.pop(0)) if parts and str(parts[0]) in SOURCE_MODELS else None
            model = SOURCE_MODELS.get(tag or "", None)
            continue
        annotation = model.model_fields[part].annotation
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    return shown, model


def _describe(error: dict[str, Any], data: Any) -> str:
    shown, parent = _walk(tuple(error["loc"]))
    loc = ".".join(shown)
    kind = error["type"]
    if kind == "extra_forbidden":
        allowed = ", ".join(parent.model_fields) if parent is not None else "(none)"
        return f"{loc}: unknown key (expected one of: {allowed})"
    if kind == "union_tag_invalid":
        expected = ", ".join(repr(t) for t in SOURCE_TYPES)
        return f"{loc}.type = {error['ctx']['tag']!r}: expected one of {expected}"
    if kind == "union_tag_not_found":
        return f"{loc} = {error.get('input')!r}: expected a mapping of settings with a type"
    value = error.get("input")
    shown = "(missing)" if kind == "missing" else repr(value)
    expected = error["msg"]
    expected = re.sub(r" or instance of \w+", "", expected.removeprefix("Value error, "))
    return f"{loc} = {shown}: {expected[0].lower() + expected[1:]}"


def parse_settings(data: Any, origin: str, base: Path) -> Settings:
    """Validate raw config data; ``origin`` names it in error messages."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: expected a mapping of settings at the top level, found {type(data).__name__}")
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        more = len(exc.errors()) - 1
        suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        raise ConfigError(f"{origin}: {_describe(first, data)}{suffix}") from None
    if settings.source.type in REMOTE_SOURCE_TYPES and not (settings.fetch.contact or "").strip():
        raise ConfigError(f"{origin}: fetch.contact is not set: name an e-mail address or URL for the "
                          f"archive to reach you (it is sent in the User-Agent of every request)")
    return settings.resolved(base)


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
