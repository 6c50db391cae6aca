"""The configuration reference as Markdown, made from the settings models themselves.

Input: the pydantic models in ``config.py`` (``Settings`` and every section under it)
and the registered source types and backbones (``plugins``: the built-ins and the
installed entry points). Output: Markdown tables, one per section (each source type
its own, and each backbone with settings of its own), with every key's dotted name,
type, default and description, and the list of backbones. The description is the field's own
``description`` or, where there is none, the comment written beside or above the field
in the model's source, so the reference cannot drift from the code. The manual's
build (docs/hooks.py) inserts it into the configuration page.
"""

from __future__ import annotations

import inspect
import io
import tokenize
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union

from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from . import config
from .plugins import Plugins, default_plugins


def field_comments(model: type[BaseModel]) -> dict[str, str]:
    """Field name -> the comment beside it or in the lines just above it, in ``model``'s source."""
    try:
        source = inspect.getsource(model)
    except (OSError, TypeError):  # no source shipped (a frozen build): descriptions only
        return {}
    comments: dict[int, str] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = token.string.lstrip("#").strip()
    lines = source.splitlines()
    body_indent = None
    found: dict[str, str] = {}
    for number, line in enumerate(lines, start=1):
        stripped = line.lstrip()
        indent = len(line) - len(stripped)
        if number == 1 or not stripped or stripped.startswith("#"):
            continue
        body_indent = indent if body_indent is None else body_indent
        name = stripped.split(":", 1)[0].strip()
        if indent != body_indent or not name.isidentifier() or name not in model.model_fields:
            continue
        if number in comments:
            found[name] = comments[number]
            continue
        above: list[str] = []
        previous = number - 1
        while previous in comments and lines[previous - 1].lstrip().startswith("#"):
            above.insert(0, comments[previous])
            previous -= 1
        if above:
            found[name] = " ".join(above)
    return found


def type_name(annotation: Any) -> str:
    """A reader's name for a field's type: ``"sv"`` or ``"en"``, integer, list of numbers, ..."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Literal:
        return " or ".join(f"`{a!r}`".replace("'", '"') for a in args)
    if origin in (Union, types.UnionType):
        names = [type_name(a) for a in args if a is not type(None)]
        return " or ".join(names) + (" or null" if type(None) in args else "")
    if origin is typing.Annotated:
        return type_name(args[0])
    if origin is list:
        return f"list of {type_name(args[0])}" if args else "list"
    if origin is dict:
        return f"mapping of {type_name(args[0])} to {type_name(args[1])}" if args else "mapping"
    simple = {str: "text", int: "integer", float: "number", bool: "true or false", Path: "path"}
    if annotation in simple:
        return simple[annotation]
    return getattr(annotation, "__name__", str(annotation))


def bounds(info: FieldInfo) -> str:
    """The constraints pydantic checks on a field, e.g. ``1 to 1000``, ``> 0``."""
    parts = []
    for item in info.metadata:
        if isinstance(item, Ge):
            parts.append(f"≥ {item.ge}")
        elif isinstance(item, Gt):
            parts.append(f"> {item.gt}")
        elif isinstance(item, Le):
            parts.append(f"≤ {item.le}")
        elif isinstance(item, Lt):
            parts.append(f"< {item.lt}")
        elif isinstance(item, MinLen):
            parts.append(f"at least {item.min_length} {'entry' if item.min_length == 1 else 'entries'}")
        elif isinstance(item, MaxLen):
            parts.append(f"at most {item.max_length} {'entry' if item.max_length == 1 else 'entries'}")
        elif getattr(item, "pattern", None):
            parts.append(f"matching `{item.pattern}`")
    return ", ".join(parts)


def default_text(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    value = info.default_factory() if info.default_factory is not None else info.default
    if value is PydanticUndefined:
        return "required"
    if value is None:
        return "null"
    if isinstance(value, (dict, list, str)) and not value:
        return "empty"
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, bool):
        value = "true" if value else "false"
    return f"`{value}`"


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _model_choices(annotation: Any) -> list[str]:
    """The ``type`` values of a union of settings models (empty if ``annotation`` is not one)."""
    if typing.get_origin(annotation) not in (Union, types.UnionType):
        return []
    members = [typing.get_args(a)[0] if typing.get_origin(a) is typing.Annotated else a
               for a in typing.get_args(annotation)]
    if not all(_nested_model(m) and "type" in m.model_fields for m in members):
        return []
    return [typing.get_args(m.model_fields["type"].annotation)[0] for m in members]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def model_rows(model: type[BaseModel], prefix: str, source_types: list[str] | None = None,
               ) -> tuple[list[list[str]], list[tuple[str, type[BaseModel]]]]:
    """The table rows of ``model``'s plain keys and the nested sections it holds.

    ``source_types``: the registered ones, for ``Settings.source`` (whose shape each
    source type declares).
    """
    comments = field_comments(model)
    rows: list[list[str]] = []
    nested: list[tuple[str, type[BaseModel]]] = []
    for name, info in model.model_fields.items():
        key = f"{prefix}{name}"
        section = _nested_model(info.annotation)
        if section is not None:
            nested.append((key, section))
            continue
        choices = _model_choices(info.annotation)
        if model is config.Settings and name == "source":
            choices = source_types or []
        if choices:  # a tagged union of sections (source): each is a table of its own below
            rows.append([f"`{key}`", "a mapping with `type`: " + ", ".join(f"`{c}`" for c in choices),
                         f"`type: {choices[0]}`", "each type's keys are listed below"])
            continue
        description = info.description or comments.get(name, "")
        limits = bounds(info)
        if limits:
            description = f"{description} ({limits})" if description else limits.capitalize()
        rows.append([f"`{key}`", type_name(info.annotation), default_text(info), description])
    return rows, nested


def section_markdown(title: str, model: type[BaseModel], prefix: str, level: int = 3,
                     source_types: list[str] | None = None, skip: frozenset[str] = frozenset(),
                     about: str = "") -> list[str]:
    """Markdown for one section and, after it, each section nested in it.

    ``skip``: keys left out (documented elsewhere); ``about``: the text under the
    heading (default: the first paragraph of the model's docstring).
    """
    rows, nested = model_rows(model, prefix, source_types)
    rows = [row for row in rows if row[0].strip("`").removeprefix(prefix) not in skip]
    nested = [(key, section) for key, section in nested if key.removeprefix(prefix) not in skip]
    out = [f"{'#' * level} {title}", ""]
    doc = model.__dict__.get("__doc__")  # the model's own, not one inherited from BaseModel
    if about:
        out += [about, ""]
    elif doc:
        out += [inspect.cleandoc(doc).split("\n\n")[0].replace("\n", " "), ""]
    if rows:
        out += ["| key | type | default | description |", "|---|---|---|---|"]
        out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
        out.append("")
    for key, section in nested:
        out += section_markdown(f"`{key}`", section, f"{key}.", level)
    return out


def backbones_markdown(plugins: Plugins, level: int = 3) -> list[str]:
    """The values ``model.name`` may take, and the settings a backbone adds of its own."""
    out = [f"{'#' * level} `model.name`: the backbones", "",
           "Installed packages can add backbones; `archive-sim plugins` lists those there are.", "",
           "| name | input size | description |", "|---|---|---|"]
    out += [f"| `{p.name}` | {p.input_size} px | {_cell(p.description)} |" for p in plugins.backbones]
    out.append("")
    common = frozenset(config.ModelSettings.model_fields)
    for plugin in plugins.backbones:
        if set(plugin.settings.model_fields) - common:
            out += section_markdown(f"`model` with `name: {plugin.name}`", plugin.settings, "model.", level,
                                    skip=common, about=_cell(plugin.description))
    return out


def settings_reference(plugins: Plugins | None = None) -> str:
    """The whole reference for ``plugins`` (default: the built-ins and the installed entry points):
    top-level keys, then each section, each source type apart, then the backbones."""
    plugins = plugins or default_plugins()
    out = section_markdown("Top-level keys", config.Settings, "", source_types=plugins.sources.names())
    for plugin in plugins.sources:
        remote = " Needs `fetch.contact`." if plugin.remote else ""
        out += section_markdown(f"`source` with `type: {plugin.name}`", plugin.settings, "source.",
                                about=_cell(plugin.description) + remote)
    out += backbones_markdown(plugins)
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    print(settings_reference(), end="")
