"""Registries of source types and backbones: what ``source.type`` and ``model.name`` may name.

Input: the built-in declarations (``module:ATTRIBUTE`` references, each a ``Plugin``
or a sequence of them) and the entry points of the groups ``archive_sim.sources`` and
``archive_sim.backbones`` that installed packages declare. Output: ``Registry``
objects, immutable once made: ``including(plugin)`` returns a new registry, so a
test can add a source without changing what any other caller sees. Entry points
are read through ``importlib.metadata`` when a registry is first asked for; one
that cannot be loaded raises ``PluginError`` with one line naming it.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import metadata
from typing import Any, Callable

from pydantic import BaseModel

SOURCE_GROUP = "archive_sim.sources"
BACKBONE_GROUP = "archive_sim.backbones"

BUILTIN_SOURCES = (
    "archive_sim.sources.local:SOURCE",
    "archive_sim.sources.json_api:SOURCE",
    "archive_sim.sources.iiif:SOURCE",
    "archive_sim.sources.csv_source:SOURCE",
)
BUILTIN_BACKBONES = (
    "archive_sim.embed.backbones:LITE_BACKBONES",
    "archive_sim.embed.backbones:KERAS_BACKBONES",
)


class PluginError(ValueError):
    """A registration that cannot be used; the message is one line naming it."""


@dataclass(frozen=True)
class Plugin:
    """One source type or backbone: its name, its settings model and what it makes.

    ``settings`` is the pydantic model of its part of config.yaml (for a source the
    whole ``source:`` mapping; for a backbone the ``model:`` mapping, a subclass of
    ``ModelSettings``). ``factory`` builds the working object: a source class called
    as ``factory(settings, context)``, or a backbone builder called as
    ``factory(settings)`` returning a Keras model and its preprocessing.
    """

    name: str
    settings: type[BaseModel]
    factory: Callable[..., Any]
    description: str
    remote: bool = False          # a source that needs HTTP (and so fetch.contact)
    input_size: int = 224         # a backbone's square input, in pixels
    origin: str = "built-in"      # where it was registered: built-in, or the entry point


@dataclass(frozen=True)
class Registry:
    """Plugins of one kind by name, in registration order; immutable."""

    kind: str                                   # "source type" or "backbone", for messages
    key: str                                    # the setting that names one: "source.type"
    entries: tuple[Plugin, ...] = field(default=())

    def __post_init__(self) -> None:
        names = [p.name for p in self.entries]
        for i, name in enumerate(names):
            if name in names[:i]:
                first = self.entries[names.index(name)]
                raise PluginError(f"{self.kind} {name!r} is registered twice ({first.origin} and "
                                  f"{self.entries[i].origin})")

    def including(self, *plugins: Plugin) -> "Registry":
        """A new registry with ``plugins`` added after these."""
        return Registry(self.kind, self.key, self.entries + tuple(plugins))

    def names(self) -> list[str]:
        return [p.name for p in self.entries]

    def get(self, name: str) -> Plugin:
        for plugin in self.entries:
            if plugin.name == name:
                return plugin
        raise PluginError(f"{self.key}: {name!r} is not one of {', '.join(self.names())}")

    def __contains__(self, name: object) -> bool:
        return any(p.name == name for p in self.entries)

    def __iter__(self) -> Iterator[Plugin]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)


@dataclass(frozen=True)
class Plugins:
    """Everything config.yaml can name: the source types and the backbones."""

    sources: Registry
    backbones: Registry

    def including(self, *plugins: Plugin, backbones: Sequence[Plugin] = ()) -> "Plugins":
        """A new set with ``plugins`` added as source types and ``backbones`` as backbones."""
        return Plugins(self.sources.including(*plugins), self.backbones.including(*backbones))


def _resolve(reference: str, what: str) -> Any:
    module, _, attribute = reference.partition(":")
    try:
        value: Any = importlib.import_module(module)
        for part in attribute.split(".") if attribute else ():
            value = getattr(value, part)
    except Exception as exc:  # a third-party module may fail in any way on import
        raise PluginError(f"{what} = {reference!r} cannot be loaded: {type(exc).__name__}: {exc}") from None
    return value


def _as_plugins(value: Any, what: str) -> list[Plugin]:
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    if not items or not all(isinstance(p, Plugin) for p in items):
        raise PluginError(f"{what} is not an archive_sim.plugins.Plugin (or a list of them)")
    return items


def load_registry(kind: str, key: str, builtins: Iterable[str], group: str | None) -> Registry:
    """The built-ins, then every entry point of ``group`` (None: built-ins only)."""
    plugins = [p for ref in builtins for p in _as_plugins(_resolve(ref, ref), ref)]
    if group is not None:
        for entry in sorted(metadata.entry_points(group=group), key=lambda e: e.name):
            what = f"entry point {entry.name!r} in {group}"
            loaded = _as_plugins(_resolve(entry.value, what), what)
            plugins += [replace(p, origin=f"{what} ({entry.value})") for p in loaded]
    return Registry(kind, key, tuple(plugins))


@cache
def default_plugins() -> Plugins:
    """The built-ins and the installed packages' entry points, read once per process."""
    return Plugins(
        sources=load_registry("source type", "source.type", BUILTIN_SOURCES, SOURCE_GROUP),
        backbones=load_registry("backbone", "model.name", BUILTIN_BACKBONES, BACKBONE_GROUP),
    )
