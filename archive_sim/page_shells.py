"""Pages of one template put together from text pieces, not rendered one by one.

Input: a Jinja template and, for each page, its context: constant values, ``fixed``
values that few pages share (a category, the way to the site root) and the rest,
whose strings and numbers differ from page to page. Output: the page's HTML, the
same text as ``template.render(context)``.

For each *shape* of context (its fixed values, the keys of its dicts, the lengths of
its lists, which of its values are empty, none or false) the template is rendered once
with a marker in place of every string and number; a page of that shape is then the
marked output with its own escaped values put in. At 100,000 item pages Jinja took
more time than everything else an item page needs.

A template may only print such a value, never test or transform it (a filter, a
comparison): the first page of each shape is also rendered by Jinja and compared, and
a shape whose pages differ is rendered by Jinja from then on. Put such logic in the
code that makes the context, or make the value ``fixed``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from jinja2 import Template
from markupsafe import Markup, escape

_MARKER = re.compile("\x00([0-9]+)\x00")
_FILLED = object()   # in a shape: a value that a marker stands for


def fill(shell: list[str | int], *args: str) -> str:
    """Text ``pieces`` (strings) with ``args`` (escaped already) put in at their numbers (ints)."""
    return "".join(piece if isinstance(piece, str) else args[piece] for piece in shell)


def split_marked(text: str) -> list[str | int]:
    """``text`` with markers ``\\0N\\0`` (as ``marker`` makes them) turned into pieces for ``fill``."""
    pieces = _MARKER.split(text)
    return [int(p) if n % 2 else p for n, p in enumerate(pieces)]


def marker(number: int) -> Markup:
    return Markup(f"\x00{number}\x00")


class PageShells:
    """Renders ``template`` through shells, one per shape of context (see the module)."""

    def __init__(self, template: Template, fixed: Iterable[str] = ()) -> None:
        """``fixed``: dotted paths ("root", "item.category") of values that belong to
        the shape: pages that differ there get shells of their own."""
        self.template = template
        self._fixed = frozenset(fixed)
        self._shells: dict[tuple[Any, ...], list[str | int] | None] = {}
        self.jinja_shapes = 0     # shapes that the template could not render through a shell

    @property
    def shapes(self) -> int:
        """Shapes met so far."""
        return len(self._shells)

    def render(self, constant: dict[str, Any], varying: dict[str, Any]) -> str:
        """The page of ``constant`` (the same object on every page: never looked into)
        and ``varying``, which holds the fixed values too."""
        values: list[str] = []
        shape: list[Any] = []
        self._walk(varying, "", values, shape, False)
        key = tuple(shape)
        if key in self._shells:
            shell = self._shells[key]
            if shell is not None:
                return fill(shell, *values)
            return self.template.render(constant, **varying)
        marked = self._walk(varying, "", [], [], True)
        shell = split_marked(self.template.render(constant, **marked))
        html = self.template.render(constant, **varying)
        if fill(shell, *values) != html:
            shell = None
            self.jinja_shapes += 1
        self._shells[key] = shell
        return html

    def _walk(self, value: Any, path: str, values: list[str], shape: list[Any], marked: bool) -> Any:
        """Put the text of ``value``'s strings and numbers in ``values`` and what else
        a template may test in ``shape``; when ``marked``, return ``value`` with markers
        in place of that text (only for a shape met for the first time: the walk runs
        for every page, so it makes nothing it need not)."""
        if path in self._fixed:
            shape.append((path, _frozen(value)))
            return value
        # Each entry of the shape names its kind: 0, 0.0 and False are equal in Python
        # but print differently, and so do an empty list and a zero.
        kind = type(value)
        if kind is str or kind is Markup or kind is int or kind is float:
            if not value:
                shape.append((kind, value))   # empty or zero: a template may test it
                return value
            values.append(escape(value) if kind is str else str(value))
            shape.append(_FILLED)
            return marker(len(values) - 1) if marked else None
        if kind is dict:
            shape.append((dict, *value))
            walked = {k: self._walk(v, f"{path}.{k}" if path else k, values, shape, marked) for k, v in value.items()}
            return walked if marked else None
        if kind is list or kind is tuple:
            shape.append((kind, len(value)))
            walked = [self._walk(v, f"{path}[]", values, shape, marked) for v in value]
            return walked if marked else None
        if value is None or kind is bool:
            shape.append((kind, value))
            return value
        raise TypeError(f"{path}: a page shell holds strings, numbers, lists and dicts, not {kind.__name__}")


def _frozen(value: Any) -> Any:
    """A hashable copy of ``value`` (dicts, lists and plain values, each with its kind)."""
    if isinstance(value, dict):
        return (dict, *((k, _frozen(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return (list, *(_frozen(v) for v in value))
    return (type(value), value)
