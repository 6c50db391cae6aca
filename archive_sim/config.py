"""Settings: config.yaml -> one validated, typed ``Settings`` object.

Input: a YAML file (or plain defaults for ``--images DIR --out SITE``). Output:
``Settings`` with every path made absolute against the config file's folder.
Validation happens once, here; an invalid file raises ``ConfigError`` whose message
is one line naming the key, the value and what was expected.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


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


class SourceSettings(_Section):
    type: Literal["local"] = "local"
    path: Path = Path("collection")
    metadata: Path | None = None
    categories: list[str] | None = None  # None: every subfolder

    @field_validator("categories")
    @classmethod
    def _non_empty(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("an empty list would select nothing; leave it out for all folders")
        return value


class ModelSettings(_Section):
    name: str = "efficientnet_lite0"
    # "imagenet" (bundled for EfficientNet-Lite, downloaded by Keras otherwise),
    # a path to a local .weights.h5 / .h5 file, or "none" for random weights.
    weights: str = "imagenet"
    batch_size: int = Field(32, ge=1, le=1024)
    workers: int = Field(2, ge=1, le=64)


class NeighborSettings(_Section):
    k: int = Field(30, ge=1, le=1000)
    trees: int = Field(10, ge=1, le=1000)
    duplicate_threshold: float = Field(0.9999, gt=0, le=1)


class MapSettings(_Section):
    perplexity: float = Field(30.0, gt=0, le=500)
    seed: int = 42
    thumbnail_size: int = Field(128, ge=16, le=1024)


class Settings(_Section):
    site: SiteSettings = SiteSettings()
    source: SourceSettings = SourceSettings()
    model: ModelSettings = ModelSettings()
    neighbors: NeighborSettings = NeighborSettings()
    map: MapSettings = MapSettings()
    state_dir: Path = Path(".archive-sim")
    output_dir: Path = Path("site")

    def resolved(self, base: Path) -> "Settings":
        """Return a copy with every relative path anchored at ``base``."""

        def anchor(p: Path | None) -> Path | None:
            return None if p is None else (p if p.is_absolute() else (base / p)).resolve()

        source = self.source.model_copy(
            update={"path": anchor(self.source.path), "metadata": anchor(self.source.metadata)}
        )
        return self.model_copy(
            update={"source": source, "state_dir": anchor(self.state_dir), "output_dir": anchor(self.output_dir)}
        )


def _describe(error: dict[str, Any], data: Any) -> str:
    loc = ".".join(str(p) for p in error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        parent = error["loc"][:-1]
        model: type[BaseModel] = Settings
        for part in parent:
            model = model.model_fields[str(part)].annotation  # type: ignore[assignment]
        allowed = ", ".join(model.model_fields)
        return f"{loc}: unknown key (expected one of: {allowed})"
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
