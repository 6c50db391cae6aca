"""A collection behind a JSON API: one listing per category, page by page.

Input: ``json_api`` settings (the list URL, query parameters, the category
parameter and a map from its values to site categories, pagination, where the
records are, which fields hold id, title and image, URL templates, metadata to
keep) and an HTTP client. Output: items whose image is an absolute http(s) URL
resolved against the list URL. A record without an id or image is reported and
skipped; a listing request that fails stops the scan (``SourceError``), because a
partial listing would look like deletions.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any, Literal
from urllib.parse import quote

from pydantic import Field, ValidationInfo, field_validator, model_validator

from ..download import FetchError, UnsafeUrlError, resolve_url
from ..plugins import Plugin
from ..settings_base import Section, http_url, url_template
from ..state_store import Item
from . import JsonClient, SourceContext, SourceError, SourceScan
from .presets import apply_preset
from .records import as_id, as_text, lookup, report_unlisted, site_category, unique_items

DEFAULT_CATEGORY = "items"  # when the API has no categories at all


class PaginationSettings(Section):
    """How a listing is split into requests."""

    style: Literal["none", "offset", "page", "next"] = Field(
        "none", description="none: one request; offset: an offset and a count; page: a page number; "
                            "next: a link to the next page in each response.")
    size: int = Field(100, ge=1, le=100_000, description="Records asked for per request.")
    size_param: str | None = Field("count", description="The query parameter carrying `size` (null: not sent).")
    offset_param: str = Field("offset", description="The query parameter of the offset (style offset).")
    page_param: str = Field("page", description="The query parameter of the page number (style page).")
    first_page: int = Field(1, ge=0, description="The number of the first page (style page).")
    next: str = Field("next", description="Dotted path to the next page's URL in a response (style next).")
    total: str | None = Field(None, description="Dotted path to the total number of records, if the API gives it.")
    max_pages: int = Field(10_000, ge=1, description="A safety stop for APIs that never say which page is the last.")


class RecordFields(Section):
    """Dotted paths into one record (``images.0.image``: key, list index, key)."""

    id: str = Field("id", description="Dotted path to the record's id.")
    title: str = Field("title", description="Dotted path to its title.")
    image: str = Field("image", description="Dotted path to its image (a URL, or a value for `image_url`).")
    category: str | None = Field(None, description="Dotted path to its category (when there is no `category_param`).")
    link: str | None = Field(None, description="Dotted path to a link to the item in the archive.")


class JsonApiSourceSettings(Section):
    type: Literal["json_api"] = Field(description="A JSON API that lists records page by page.")
    preset: Literal["arosenius"] | None = Field(
        None, description="Fill in the settings of a known API (arosenius: the Ivar Arosenius archive); "
                          "keys given here still win.")
    url: str = Field(description="The list endpoint (an absolute http(s) URL).")
    params: dict[str, str] = Field(default_factory=dict, description="Query parameters sent with every request.")
    category_param: str | None = Field(
        None, description="A query parameter asked once per source category value (see `categories`).")
    categories: dict[str, str] = Field(
        default_factory=dict, validate_default=True,
        description="Source category value -> site category. With `category_param`: the values to ask for; "
                    "without it: the values of `fields.category` to keep (empty: keep all as they are).")
    pagination: PaginationSettings = Field(PaginationSettings(), description="How the listing is paged.")
    records: str = Field("", description='Dotted path to the list of records in a response ("": the response).')
    fields: RecordFields = Field(RecordFields(), description="Where id, title, image, category and link are.")
    image_url: str | None = Field(
        None, description="A template with {image} and {id} making the image URL; null: the field is a URL.")
    link_url: str | None = Field(None, description="A template with {id}: the item's page in the archive.")
    metadata: dict[str, str] = Field(default_factory=dict, description="Site metadata key -> dotted path.")

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, data: Any) -> Any:
        return apply_preset(data) if isinstance(data, dict) else data

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return http_url(value)

    @field_validator("image_url")
    @classmethod
    def _image_url(cls, value: str | None) -> str | None:
        return url_template(value, ("image", "id"))

    @field_validator("link_url")
    @classmethod
    def _link_url(cls, value: str | None) -> str | None:
        return url_template(value, ("id",))

    @field_validator("categories")
    @classmethod
    def _categories(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        if info.data.get("category_param") and not value:
            raise ValueError(f"list the source values to ask for with {info.data['category_param']}= "
                             "and the site category of each, e.g. {Konstverk: artworks}")
        return value


def quote_path(value: str, keep_slashes: bool = True) -> str:
    """``value`` for a URL template's path: each segment percent-encoded (a leading ``/``
    too), or with ``keep_slashes=False`` the whole value as one segment. A ``.`` or
    ``..`` segment would move the request out of the template's path (``%2E%2E`` is
    no way round: HTTP clients decode it), so it raises ``UnsafeUrlError``.
    """
    parts = value.split("/") if keep_slashes else [value]
    if any(part in (".", "..") for part in parts):
        raise UnsafeUrlError(f"{value[:200]!r} has a '.' or '..' segment that would leave the URL template's path")
    joined = "/".join(quote(part, safe="") for part in parts)
    return "%2F" + joined[1:] if joined.startswith("/") else joined


class JsonApiSource:
    def __init__(self, settings: JsonApiSourceSettings, context: SourceContext) -> None:
        self.settings = settings
        self.http: JsonClient = context.http

    def scan(self) -> SourceScan:
        s = self.settings
        scan = SourceScan()
        items: list[Item] = []
        unlisted: Counter[str] = Counter()
        if s.category_param:
            listings = [(f"{s.category_param}={value}", category, {**s.params, s.category_param: value})
                        for value, category in s.categories.items()]
        else:
            listings = [(s.url, None, dict(s.params))]
        for label, category, params in listings:
            number = 0
            for records in self._pages(label, params, scan.problems):
                for record in records:
                    number += 1
                    item = self._item(record, category, f"{label} record {number}", scan.problems, unlisted)
                    if item is not None:
                        items.append(item)
        report_unlisted(unlisted, "record", scan.problems)
        scan.items = unique_items(items, scan.problems)
        return scan

    # -- pages ------------------------------------------------------------------------------
    def _pages(self, label: str, params: dict[str, str], problems: dict[str, str]) -> Iterator[list[Any]]:
        s, p = self.settings, self.settings.pagination
        url: str = s.url
        query: dict[str, str] | None = dict(params)
        if p.size_param and p.style != "none":
            query[p.size_param] = str(p.size)
        offset, page, fetched = 0, p.first_page, 0
        seen_urls: set[str] = set()
        seen_ids: set[str] = set()
        for number in range(1, p.max_pages + 1):
            if query is not None and p.style == "offset":
                query[p.offset_param] = str(offset)
            elif query is not None and p.style == "page":
                query[p.page_param] = str(page)
            try:
                document = self.http.get_json(url, query)
            except FetchError as exc:
                raise SourceError(f"source {label}: page {number} ({url}): {exc}; the catalog is unchanged") from None
            records = lookup(document, s.records)
            if not isinstance(records, list):
                where = f"'{s.records}'" if s.records else "the top level"
                raise SourceError(f"source {label}: page {number} ({url}) has no list of records at {where} "
                                  f"(source.records); the catalog is unchanged")
            ids = {i for i in (as_id(lookup(r, s.fields.id)) for r in records) if i is not None}
            if number > 1 and ids and ids <= seen_ids:
                problems[f"source {label}"] = (f"page {number} repeats records already read; stopped there "
                                               "(does the API honour source.pagination?)")
                return
            seen_ids |= ids
            yield records
            fetched += len(records)
            if p.style == "none" or not records:
                return
            total = lookup(document, p.total) if p.total else None
            if isinstance(total, int) and not isinstance(total, bool) and fetched >= total:
                return
            if p.style == "offset":
                offset += len(records)
            elif p.style == "page":
                page += 1
            else:
                link = lookup(document, p.next)
                if not isinstance(link, str) or not link.strip():
                    return
                try:
                    url = resolve_url(link, url)
                except UnsafeUrlError as exc:
                    raise SourceError(f"source {label}: next page link {exc}; the catalog is unchanged") from None
                if url in seen_urls:
                    return
                seen_urls.add(url)
                query = None  # a next link carries its own query
        problems[f"source {label}"] = f"stopped after {p.max_pages} pages (source.pagination.max_pages)"

    # -- records ------------------------------------------------------------------------------
    def _item(self, record: Any, category: str | None, subject: str, problems: dict[str, str],
              unlisted: Counter[str]) -> Item | None:
        s = self.settings
        if not isinstance(record, dict):
            problems[subject] = f"not a JSON object ({type(record).__name__}); skipped"
            return None
        item_id = as_id(lookup(record, s.fields.id))
        if item_id is None:
            problems[subject] = f"no usable id at '{s.fields.id}' (source.fields.id); skipped"
            return None
        subject = f"{subject} (id {item_id!r})"
        if category is None:
            category = self._category(record, subject, problems, unlisted)
            if category is None:
                return None
        image_value = as_id(lookup(record, s.fields.image))
        if image_value is None:
            problems[subject] = f"no image at '{s.fields.image}' (source.fields.image); skipped"
            return None
        try:
            if s.image_url:
                quoted_id = quote_path(item_id, keep_slashes=False) if "{id}" in s.image_url else ""
                image = resolve_url(s.image_url.format(image=quote_path(image_value), id=quoted_id), s.url)
            else:
                image = resolve_url(image_value, s.url)
        except UnsafeUrlError as exc:
            problems[subject] = f"image {exc}; skipped"
            return None
        title = as_text(lookup(record, s.fields.title)) or item_id
        metadata = {}
        for key, path in s.metadata.items():
            text = as_text(lookup(record, path))
            if text:
                metadata[key] = text
        return Item(id=item_id, category=category, title=title, image=image, metadata=metadata,
                    link=self._link(record, item_id), image_name=image_value if s.image_url else None)

    def _category(self, record: dict[str, Any], subject: str, problems: dict[str, str],
                  unlisted: Counter[str]) -> str | None:
        s = self.settings
        if s.fields.category is None:
            return DEFAULT_CATEGORY
        raw = lookup(record, s.fields.category)
        values = [as_text(v) for v in (raw if isinstance(raw, list) else [raw])]
        values = [v for v in values if v]
        if not values:
            problems[subject] = f"no category at '{s.fields.category}' (source.fields.category); skipped"
            return None
        for value in values:
            category = site_category(value, s.categories)
            if category is not None:
                return category
        unlisted[values[0]] += 1
        return None

    def _link(self, record: dict[str, Any], item_id: str) -> str | None:
        s = self.settings
        value: str | None = None
        if s.link_url:
            try:
                value = s.link_url.format(id=quote_path(item_id, keep_slashes=False))
            except UnsafeUrlError:
                return None
        elif s.fields.link:
            value = as_id(lookup(record, s.fields.link))
        if value is None:
            return None
        try:
            return resolve_url(value, s.url)
        except UnsafeUrlError:
            return None  # a javascript: or data: link is dropped, the item is kept


SOURCE = Plugin("json_api", JsonApiSourceSettings, JsonApiSource,
                "A JSON API listing records page by page (presets: arosenius).", remote=True)
