"""A collection published with IIIF: Presentation 3.0 and 2.1 collections and manifests.

Input: ``iiif`` settings (a collection URL, nested collections followed, or one
manifest; where the category comes from; the longest side to ask for) and an HTTP
client. Output: one item per manifest: its first image requested through the IIIF
Image API at a bounded size (never the full original when the service can scale),
label as title, metadata, rights and required statement as metadata, homepage as
the link back. A manifest that cannot be read is reported and its item kept from
the last run (``SourceScan.unreachable``); an unreadable collection stops the scan.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from ..download import FetchError, UnsafeUrlError, resolve_url
from ..plugins import Plugin
from ..settings_base import Section, http_url
from ..state_store import Item
from . import JsonClient, SourceContext, SourceError, SourceScan
from .records import as_id, plain_text, report_unlisted, site_category, unique_items

MAX_DEPTH = 8  # nested collections followed at most this deep


# -- reading IIIF values (pure) ---------------------------------------------------------------
def node_id(node: Any) -> str | None:
    if not isinstance(node, dict):
        return None
    value = node.get("id") or node.get("@id")
    return value if isinstance(value, str) and value.strip() else None


def node_kind(node: Any) -> str | None:
    """"collection", "manifest", or None, for Presentation 3 ``type`` and 2 ``@type``."""
    if not isinstance(node, dict):
        return None
    kind = str(node.get("type") or node.get("@type") or "").lower()
    if kind.endswith("collection"):
        return "collection"
    if kind.endswith("manifest"):
        return "manifest"
    return None


def text_of(value: Any, language: str) -> str | None:
    """Display text of a IIIF label or value: a v3 language map, v2 strings or @value objects."""
    if value is None:
        return None
    if isinstance(value, str):
        return plain_text(value) or None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, dict):
        if "@value" in value:
            return text_of(value["@value"], language)
        for key in (language, "none", "en", *value.keys()):
            if key in value:
                text = text_of(value[key], language)
                if text:
                    return text
        return None
    if isinstance(value, list):
        tagged = [v for v in value if isinstance(v, dict) and "@value" in v]
        if tagged and len(tagged) == len(value):
            mine = [v for v in tagged if str(v.get("@language", "")).split("-")[0] == language]
            value = mine or [v for v in tagged if "@language" not in v] or tagged
        texts = [t for t in (text_of(v, language) for v in value) if t]
        return "; ".join(dict.fromkeys(texts)) or None
    return None


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else (None if isinstance(value, list) else value)


def _members(collection: dict[str, Any]) -> list[Any]:
    if isinstance(collection.get("items"), list):
        return collection["items"]
    members: list[Any] = []
    for key in ("collections", "manifests", "members"):
        if isinstance(collection.get(key), list):
            members += collection[key]
    return members


def _is_full_manifest(node: dict[str, Any]) -> bool:
    return isinstance(node.get("sequences"), list) or (
        isinstance(node.get("items"), list) and any(isinstance(c, dict) for c in node["items"]))


def _is_full_collection(node: dict[str, Any]) -> bool:
    return bool(_members(node))


def painting_body(manifest: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The first canvas and the image on it (v3 painting annotation body, v2 image resource)."""
    if isinstance(manifest.get("sequences"), list):  # Presentation 2
        sequence = _first(manifest["sequences"]) or {}
        canvas = _first(sequence.get("canvases")) if isinstance(sequence, dict) else None
        if not isinstance(canvas, dict):
            return None, None
        annotation = _first(canvas.get("images"))
        resource = annotation.get("resource") if isinstance(annotation, dict) else None
        if isinstance(resource, dict) and "default" in resource:  # oa:Choice
            resource = resource["default"]
        return canvas, resource if isinstance(resource, dict) else None
    canvas = next((c for c in manifest.get("items") or [] if isinstance(c, dict)), None)
    if canvas is None:
        return None, None
    page = _first(canvas.get("items"))
    annotation = _first(page.get("items")) if isinstance(page, dict) else None
    body = _first(annotation.get("body")) if isinstance(annotation, dict) else None
    if isinstance(body, dict) and str(body.get("type", "")).lower() == "choice":
        body = _first(body.get("items"))
    return canvas, body if isinstance(body, dict) else None


def image_service(body: dict[str, Any]) -> dict[str, Any] | None:
    for service in body.get("service") if isinstance(body.get("service"), list) else [body.get("service")]:
        if not isinstance(service, dict) or node_id(service) is None:
            continue
        described = " ".join(str(service.get(k, "")) for k in ("type", "@type", "@context", "profile")).lower()
        if "imageservice" in described or "iiif.io/api/image" in described or "image-api" in described:
            return service
    return None


def _size(node: dict[str, Any] | None, key: str) -> int | None:
    value = node.get(key) if isinstance(node, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def image_request(service: dict[str, Any], width: int | None, height: int | None, longest: int) -> str | None:
    """An Image API URL for the whole image with its longest side at most ``longest``.

    Uses ``w,`` or ``,h`` (level 1 in both Image API 2 and 3), ``max``/``full``
    when the image is already small enough, and for a level 0 service one of the
    sizes it lists. None when only the full original could be asked for.
    """
    base = node_id(service).rstrip("/")  # type: ignore[union-attr]
    described = " ".join(str(service.get(k, "")) for k in ("type", "@type", "@context")).lower()
    version = 3 if ("imageservice3" in described or "image/3" in described) else 2
    if "image-api/1" in described:
        version = 1
    quality = "native" if version == 1 else "default"
    full = "max" if version == 3 else "full"
    profile = str(_first(service.get("profile")) or "").lower()
    if "level0" in profile:
        sizes = [(s.get("width"), s.get("height")) for s in service.get("sizes") or []
                 if isinstance(s, dict) and isinstance(s.get("width"), int) and isinstance(s.get("height"), int)]
        if not sizes:
            return None
        sizes.sort(key=lambda wh: max(wh))
        w, h = next((wh for wh in sizes if max(wh) >= longest), sizes[-1])
        size = f"{w},{h}" if version == 3 else f"{w},"
    elif width and height and max(width, height) <= longest:
        size = full
    elif width and height:
        size = f"{longest}," if width >= height else f",{longest}"
    else:
        size = f"!{longest},{longest}"
    return f"{base}/full/{size}/0/{quality}.jpg"


class IiifSourceSettings(Section):
    type: Literal["iiif"] = Field(description="A IIIF collection or manifest (Presentation 3.0 or 2.1).")
    url: str = Field(description="A IIIF collection (nested ones are followed) or one manifest.")
    category_from: Literal["collection", "metadata"] = Field(
        "collection", description="collection: the label of the collection holding the manifest; "
                                  "metadata: the value of the metadata entry labelled `category_label`.")
    category_label: str | None = Field(None, validate_default=True,
                                       description="The metadata label holding the category (category_from: metadata).")
    categories: dict[str, str] = Field(
        default_factory=dict, description="Source category value -> site category; empty keeps all as they are.")
    id_label: str | None = Field(None, description="The metadata label holding the id; null: the manifest URL.")
    image_size: int = Field(1024, ge=64, le=4096, description="The longest side, in pixels, asked of the Image API.")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return http_url(value)

    @field_validator("category_label")
    @classmethod
    def _label(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("category_from") == "metadata" and not value:
            raise ValueError("name the metadata label that holds the category (category_from is metadata)")
        return value


class IiifSource:
    def __init__(self, settings: IiifSourceSettings, context: SourceContext) -> None:
        self.settings = settings
        self.http: JsonClient = context.http
        self.language = context.language

    def scan(self) -> SourceScan:
        scan = SourceScan()
        found: list[tuple[str, dict[str, Any] | None, str | None]] = []  # (manifest URL, document, collection)
        top = self._get(self.settings.url, "collection")
        self._walk(top, self.settings.url, None, 0, set(), found, scan.problems)
        fetched: dict[str, dict[str, Any]] = {}
        wanted = list(dict.fromkeys(url for url, doc, _ in found if doc is None))
        for url, document, reason in self.http.get_json_many(wanted):
            if reason is not None or node_kind(document) != "manifest":
                why = reason or "not a IIIF manifest"
                scan.problems[f"manifest {url}"] = f"{why}; its item is kept as it was and tried again next run"
                scan.unreachable.add(url)
            else:
                fetched[url] = document
        items: list[Item] = []
        unlisted: Counter[str] = Counter()
        for url, document, collection in found:
            document = document if document is not None else fetched.get(url)
            if document is None:
                continue
            item = self._item(document, url, collection, scan.problems, unlisted)
            if item is not None:
                items.append(item)
        report_unlisted(unlisted, "manifest", scan.problems)
        scan.items = unique_items(items, scan.problems)
        return scan

    def _get(self, url: str, what: str) -> Any:
        try:
            return self.http.get_json(url)
        except FetchError as exc:
            raise SourceError(f"IIIF {what} {url}: {exc}; the catalog is unchanged") from None

    def _walk(self, node: Any, url: str, label: str | None, depth: int, visited: set[str],
              found: list[tuple[str, dict[str, Any] | None, str | None]], problems: dict[str, str]) -> None:
        kind = node_kind(node)
        if kind == "manifest":
            found.append((node_id(node) or url, node, label))
            return
        if kind != "collection":
            raise SourceError(f"IIIF {url}: neither a collection nor a manifest (source.url); the catalog is unchanged")
        if url in visited:
            return
        visited.add(url)
        own = text_of(node.get("label"), self.language) or label
        for member in _members(node):
            member_url = node_id(member)
            if member_url is None:
                problems[f"collection {url}"] = "a member without an id; skipped"
                continue
            try:
                member_url = resolve_url(member_url, url)
            except UnsafeUrlError as exc:
                problems[f"collection {url}"] = f"member {exc}; skipped"
                continue
            member_kind = node_kind(member)
            if member_kind == "manifest":
                found.append((member_url, member if _is_full_manifest(member) else None, own))
            elif member_kind == "collection":
                if depth + 1 > MAX_DEPTH:
                    problems[f"collection {member_url}"] = f"nested more than {MAX_DEPTH} deep; skipped"
                    continue
                child = member if _is_full_collection(member) else self._get(member_url, "collection")
                self._walk(child, member_url, own, depth + 1, visited, found, problems)
            else:
                problems[f"collection {url}"] = f"member {member_url} is neither a collection nor a manifest; skipped"

    def _item(self, manifest: dict[str, Any], url: str, collection: str | None, problems: dict[str, str],
              unlisted: Counter[str]) -> Item | None:
        s, lang = self.settings, self.language
        subject = f"manifest {url}"
        metadata: dict[str, str] = {}
        for entry in manifest.get("metadata") or []:
            if not isinstance(entry, dict):
                continue
            key, value = text_of(entry.get("label"), lang), text_of(entry.get("value"), lang)
            if key and value:
                metadata[key] = f"{metadata[key]}; {value}" if key in metadata else value
        by_label = {k.casefold(): v for k, v in metadata.items()}
        rights = text_of(manifest.get("rights") or manifest.get("license"), lang)
        if rights:
            metadata["rights"] = rights
        statement = manifest.get("requiredStatement")
        if isinstance(statement, dict):
            key, value = text_of(statement.get("label"), lang), text_of(statement.get("value"), lang)
            if value:
                metadata[key or "attribution"] = value
        elif manifest.get("attribution"):
            value = text_of(manifest.get("attribution"), lang)
            if value:
                metadata["attribution"] = value

        if s.id_label:
            item_id = as_id(by_label.get(s.id_label.casefold()))
            if item_id is None:
                problems[subject] = f"no metadata {s.id_label!r} to take the id from (source.id_label); skipped"
                return None
        else:
            item_id = node_id(manifest) or url
        if s.category_from == "collection":
            value = collection
        else:
            value = by_label.get((s.category_label or "").casefold())
        if value is None:
            where = "no collection label" if s.category_from == "collection" else f"no metadata {s.category_label!r}"
            problems[subject] = f"{where} to take the category from; skipped"
            return None
        category = site_category(value, s.categories)
        if category is None:
            unlisted[value] += 1
            return None

        canvas, body = painting_body(manifest)
        if body is None:
            problems[subject] = "no image on its first canvas; skipped"
            return None
        width, height = _size(body, "width") or _size(canvas, "width"), _size(body, "height") or _size(canvas, "height")
        service = image_service(body)
        request = image_request(service, width, height, s.image_size) if service else None
        try:
            image = resolve_url(request or node_id(body) or "", url)
        except UnsafeUrlError as exc:
            problems[subject] = f"image {exc}; skipped"
            return None
        title = text_of(manifest.get("label"), lang) or item_id
        return Item(id=item_id, category=category, title=title, image=image, metadata=metadata,
                    link=self._homepage(manifest, url), record=url)

    def _homepage(self, manifest: dict[str, Any], url: str) -> str | None:
        candidates = manifest.get("homepage") or manifest.get("related")
        for candidate in candidates if isinstance(candidates, list) else [candidates]:
            value = candidate if isinstance(candidate, str) else node_id(candidate)
            if value:
                try:
                    return resolve_url(value, url)
                except UnsafeUrlError:
                    continue
        return None


SOURCE = Plugin("iiif", IiifSourceSettings, IiifSource,
                "IIIF Presentation 3.0 or 2.1 collections and manifests, images through the Image API.",
                remote=True)
