"""The site's Jinja templates: the built-in ones, a theme's, and what each page's template uses.

Input: the built-in templates folder and ``site.theme_dir`` (optional). Output: a Jinja
``Environment`` in which a theme's templates override the built-in ones by name while
``builtin/<name>`` always names the built-in one (a theme's ``item.html`` can
``{% extends "builtin/item.html" %}``); the static files, the theme's over the
built-in ones; and per template a fingerprint of every template file it uses
(``extends``, ``include``, ``import``, as the theme resolves them), part of the key
of each page made with it.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PrefixLoader, StrictUndefined, meta
from jinja2.compiler import CodeGenerator, Frame
from jinja2.nodes import Expr
from markupsafe import escape

try:
    from markupsafe import _escape_inner  # MarkupSafe's C escaping of a str, as escape() does it
except ImportError:  # a MarkupSafe that names it otherwise
    def _escape_inner(text: str, /) -> str:
        return str(escape(text))

BUILTIN = "builtin"  # the prefix that names a built-in template past a theme's override


def builtin_dir() -> Path:
    """Templates inside the installed package, or the checkout's top-level folder."""
    packaged = Path(str(resources.files("archive_sim"))) / "templates"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "templates"


_DICT_ATTRIBUTES = frozenset(dir(dict))


def escape_text(value: Any) -> str:
    """What ``{{ value }}`` writes into an escaped template: the text of
    ``markupsafe.escape(value)``, as a plain string.

    ``escape`` makes a ``Markup`` object of every value (a Python-level constructor),
    which Jinja then only joins into the page: at four hundred values an item page,
    that was about half of its Jinja time. Wherever Jinja keeps output as a value (a macro's
    result, ``{% set %}`` and ``{% filter %}`` blocks) it marks it ``Markup`` itself.
    """
    if type(value) is str:
        return _escape_inner(value)
    if hasattr(value, "__html__"):
        return str(value.__html__())
    return _escape_inner(str(value))


class _SiteCodeGenerator(CodeGenerator):
    """Jinja's code generator, writing ``{{ value }}`` with ``escape_text`` where the
    template is escaped (``{% autoescape %}`` blocks that switch it keep Jinja's own code)."""

    def _output_child_pre(self, node: Expr, frame: Frame, finalize: Any) -> None:
        if frame.eval_ctx.volatile or not frame.eval_ctx.autoescape:
            super()._output_child_pre(node, frame, finalize)
            return
        self.write("environment.escape_text(")
        if finalize.src is not None:
            self.write(finalize.src)


class SiteEnvironment(Environment):
    """Jinja's environment, with values written and ``obj.name`` looked up faster.

    Values are escaped by ``escape_text``. Jinja tries the attribute first and the
    item after it, so ``card.title`` on a dict raised and caught an ``AttributeError``
    each time: a fifth of an item page's render. A plain dict has no attributes but
    those of its type, so looking up the item first where the name is not one of them
    gives the same answer, every time.
    """

    code_generator_class = _SiteCodeGenerator
    escape_text = staticmethod(escape_text)

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                pass
        return super().getattr(obj, attribute)


def environment(theme_dir: Path | None = None, every_page: dict[str, Any] | None = None) -> Environment:
    """The templates of a site with theme ``theme_dir``; ``every_page`` (what every page
    sees: site, labels, categories) becomes the templates' globals, so that macros
    see it too."""
    if theme_dir is not None and not theme_dir.is_dir():
        raise FileNotFoundError(f"site.theme_dir = {str(theme_dir)!r}: no such folder")
    builtin = FileSystemLoader(str(builtin_dir()))
    loaders = [FileSystemLoader(str(theme_dir))] if theme_dir is not None else []
    # Every template is HTML: escaped, always. No auto_reload: templates do not change
    # during a build, and checking them cost three stat calls for each of 100,000 pages.
    env = SiteEnvironment(loader=ChoiceLoader([*loaders, builtin, PrefixLoader({BUILTIN: builtin})]),
                      autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                      keep_trailing_newline=True, auto_reload=False)
    env.globals.update(every_page or {})
    return env


def static_files(theme_dir: Path | None = None) -> dict[str, Path]:
    """Site path (``static/...``) -> the file to publish there: the theme's ``static/``
    files over the built-in ones of the same name."""
    found: dict[str, Path] = {}
    for folder in (builtin_dir() / "static", *([theme_dir / "static"] if theme_dir is not None else [])):
        for source in sorted(folder.rglob("*")):
            if source.is_file():
                found[f"static/{source.relative_to(folder).as_posix()}"] = source
    return found


class Fingerprints:
    """The fingerprint of a template: a hash of its source and of every template it
    uses, found by parsing them. A template that names another by a variable (which
    parsing cannot resolve) depends on every template there is."""

    def __init__(self, env: Environment) -> None:
        self._env = env
        self._prints: dict[str, str] = {}

    def __call__(self, name: str) -> str:
        found = self._prints.get(name)
        if found is None:
            digest = hashlib.sha256()
            for used in sorted(self._closure(name)):
                source = self._env.loader.get_source(self._env, used)[0]  # type: ignore[union-attr]
                digest.update(f"{used}\0{source}\0".encode("utf-8"))
            found = self._prints[name] = digest.hexdigest()
        return found

    def _closure(self, name: str) -> set[str]:
        seen: set[str] = set()
        pending = [name]
        while pending:
            current = pending.pop()
            if current in seen:
                continue
            seen.add(current)
            source = self._env.loader.get_source(self._env, current)[0]  # type: ignore[union-attr]
            for used in meta.find_referenced_templates(self._env.parse(source)):
                if used is None:
                    return set(self._env.list_templates())
                pending.append(used)
        return seen
