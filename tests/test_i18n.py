"""Both interface languages say everything: no label is missing in either."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest

from archive_sim.site.i18n import LABELS, labels

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"


def test_swedish_and_english_have_the_same_labels():
    assert set(LABELS) == {"sv", "en"}
    assert set(labels("sv")) == set(labels("en"))


def test_the_similar_list_is_called_liknande_in_swedish_and_similar_in_english():
    assert labels("sv")["similar"] == "Liknande"
    assert labels("en")["similar"] == "Similar"
    assert labels("sv")["map"] == "Bildrelationer"


@pytest.mark.parametrize("language", ["sv", "en"])
def test_no_label_is_empty_or_untranslated_by_accident(language):
    for key, text in labels(language).items():
        assert text.strip() == text and text, (language, key)


def test_placeholders_match_between_languages():
    def fields(text: str) -> set[str]:
        return {name for _, name, _, _ in string.Formatter().parse(text) if name}

    for key in labels("sv"):
        assert fields(labels("sv")[key]) == fields(labels("en")[key]), key
    assert labels("sv")["page_of"].format(page=2, pages=5) == "Sida 2 av 5"


def test_every_label_a_template_uses_exists():
    # Jinja renders a missing t.key as nothing: a blank button, a heading without text.
    used: set[str] = set()
    optional: set[str] = set()
    for template in TEMPLATES.glob("*.html"):
        text = template.read_text(encoding="utf-8")
        for tag in re.findall(r"\{[{%].*?[}%]\}", text, flags=re.S):
            used |= set(re.findall(r"\bt\.([a-z_]+)", tag))
            used |= set(re.findall(r"\bt\[['\"]([a-z_]+)['\"]\]", tag))
            optional |= set(re.findall(r"\bt\.([a-z_]+) is defined", tag))
    assert used, "no labels found in templates"
    missing = used - optional - set(labels("sv"))
    assert not missing, sorted(missing)
