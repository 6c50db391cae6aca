"""The site's templates write exactly what plain Jinja writes, escaping included.

``SiteEnvironment`` writes ``{{ value }}`` with its own escaping; these templates use
every construct where Jinja keeps output as a value (macros, call blocks, ``set``
and ``filter`` blocks, ``autoescape`` switched off and on), with values that need
escaping and values already marked safe.
"""

from __future__ import annotations

import pytest
from jinja2 import DictLoader, Environment, StrictUndefined
from markupsafe import Markup

from archive_sim.site.templates import SiteEnvironment, escape_text

TEMPLATES = {
    "macros.html": """{% macro card(c) %}<a href="{{ c.url }}">{{ c.title }}</a>{% endmacro %}{% macro framed(c) %}<div>{{ card(c) }}{{ caller() }}</div>{% endmacro %}""",
    "base.html": """<title>{% block title %}{{ title }}{% endblock %}</title>{% block body %}{% endblock %}""",
    "page.html": """{% extends "base.html" %}{% import "macros.html" as m %}
{% block body %}
{{ m.card(card) }}
{% call m.framed(card) %}<i>{{ note }}</i>{% endcall %}
{% set block_text %}<b>{{ title }}</b>{% endset %}[{{ block_text }}|{{ block_text|length }}]
{% filter upper %}{{ title }} & <u>{{ note }}</u>{% endfilter %}
{% autoescape false %}{{ title }}{% endautoescape %}{% autoescape true %}{{ title }}{% endautoescape %}
{{ safe }} {{ number }} {{ ratio }} {{ none_value }} {{ title|e }} {{ title|safe }} {{ items|join(", ") }}
{% if title|length > 6 and number > 3 %}long{% endif %}
{% for x in items %}{{ loop.index }}:{{ x }}{% if not loop.last %}, {% endif %}{% endfor %}
{% endblock %}""",
}

CONTEXT = {
    "title": 'Göteborg "hamn" <1902> & \'kaj\'',
    "note": "<script>alert(1)</script>",
    "card": {"url": "a/b?x=1&y=2", "title": "<Lisbon>"},
    "safe": Markup("<em>already safe</em>"),
    "number": 42, "ratio": 0.5, "none_value": None,
    "items": ["<a>", "b&c", Markup("<d>")],
}


def render(env: Environment) -> str:
    return env.get_template("page.html").render(CONTEXT)


def test_every_construct_renders_as_plain_jinja_renders_it() -> None:
    options = dict(loader=DictLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined,
                   trim_blocks=True, lstrip_blocks=True)
    ours, plain = render(SiteEnvironment(**options)), render(Environment(**options))
    assert ours == plain
    assert "&lt;script&gt;" in ours and "<em>already safe</em>" in ours


@pytest.mark.parametrize("value", ["", "plain", "<&>\"'", 7, 2.5, None, Markup("<b>x</b>"), ["<"]])
def test_escape_text_is_the_text_of_markupsafe_escape(value: object) -> None:
    from markupsafe import escape
    written = escape_text(value)
    assert type(written) is str and written == str(escape(value))
