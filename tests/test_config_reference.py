"""The configuration reference is made from the settings models and lists every key."""

from __future__ import annotations

import typing

from pydantic import BaseModel, ConfigDict, Field

from archive_sim import config
from archive_sim.config_reference import section_markdown, settings_reference
from archive_sim.plugins import default_plugins


class Inner(BaseModel):
    """How the inner part behaves."""

    model_config = ConfigDict(extra="forbid")
    depth: float = Field(0.5, gt=0, le=1)   # how deep to go


class Example(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Where the output goes,
    # relative to the config file.
    out: str = "site"
    mode: typing.Literal["fast", "exact"] = "exact"
    size: int = Field(48, ge=1, le=1000, description="items per page")  # not this comment
    url: str | None = None
    inner: Inner = Inner()


def rows(markdown: str) -> dict[str, list[str]]:
    """Key -> the other cells of its row, from the reference's tables."""
    found = {}
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if line.startswith("| `") and len(cells) == 4:
            found[cells[0].strip("`")] = cells[1:]
    return found


def test_a_key_shows_its_type_default_limits_and_description() -> None:
    table = rows("\n".join(section_markdown("Example", Example, "example.")))
    assert table["example.out"] == ["text", "`site`", "Where the output goes, relative to the config file."]
    assert table["example.mode"] == ['`"fast"` or `"exact"`', "`exact`", ""]
    assert table["example.size"] == ["integer", "`48`", "items per page (≥ 1, ≤ 1000)"]
    assert table["example.url"] == ["text or null", "null", ""]
    assert table["example.inner.depth"] == ["number", "`0.5`", "how deep to go (> 0, ≤ 1)"]


def test_a_nested_section_gets_its_own_heading_and_docstring() -> None:
    markdown = "\n".join(section_markdown("Example", Example, "example."))
    assert "### `example.inner`\n\nHow the inner part behaves." in markdown
    assert markdown.index("`example.size`") < markdown.index("### `example.inner`")


def dotted_keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    keys = set()
    for name, info in model.model_fields.items():
        nested = info.annotation
        if isinstance(nested, type) and issubclass(nested, BaseModel):
            keys |= dotted_keys(nested, f"{prefix}{name}.")
        else:
            keys.add(f"{prefix}{name}")
    return keys


def test_every_setting_of_every_source_type_is_in_the_reference() -> None:
    table = rows(settings_reference())
    expected = dotted_keys(config.Settings)
    for source_type in default_plugins().sources:
        expected |= dotted_keys(source_type.settings, "source.")
    assert expected - set(table) == set()
    assert table["fetch.max_shrink"][1] == "`0.2`"
    assert table["model.descriptor.scales"][1] == "`[1.414, 1.0, 0.707]`"
