"""Extension by registration: a source type or a backbone is one module that declares
its settings and its class; the settings, the build and the CLI then know it by name.

The source and the backbone here are defined in this module and registered on a
copy of the default registry: nothing is installed, and no other test sees them.
Entry points are read from a real ``.dist-info`` folder put on ``sys.path``.
"""

from __future__ import annotations

import json
import pickle
import shutil
import sys
import textwrap
from pathlib import Path
from typing import Literal

import numpy as np
import pytest
from pydantic import Field
from PIL import Image

from archive_sim.cli import build_parser, main
from archive_sim.commands import build
from archive_sim.config import ConfigError, ModelSettings, Settings, parse_settings
from archive_sim.config_reference import settings_reference
from archive_sim.embed.backbones import BackboneError, load_backbone
from archive_sim.embed.descriptors import descriptor_model_id, load_descriptor
from archive_sim.plugins import Plugin, PluginError, default_plugins, load_registry
from archive_sim.progress import Report
from archive_sim.settings_base import Section
from archive_sim.sources import SourceContext, SourceScan
from archive_sim.state_store import Item, StateStore

REPO = Path(__file__).resolve().parents[1]
COLLECTION = REPO / "examples" / "collection"


# -- a source type: a text file listing "category | title | image path" -----------------------
class ListFileSettings(Section):
    type: Literal["list_file"] = Field(description="A text file with one item per line.")
    path: Path = Field(Path("items.txt"), description="The list (relative to the config file).")
    separator: str = Field("|", description="What separates category, title and image path on a line.")


class ListFileSource:
    def __init__(self, settings: ListFileSettings, context: SourceContext) -> None:
        self.settings = settings

    def scan(self) -> SourceScan:
        scan = SourceScan()
        lines = self.settings.path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, start=1):
            parts = [p.strip() for p in line.split(self.settings.separator)]
            if len(parts) != 3:
                scan.problems[f"{self.settings.path}:{number}"] = "expected category | title | image"
                continue
            category, title, image = parts
            path = self.settings.path.parent / image
            scan.items.append(Item(id=path.stem.replace(" ", "-"), category=category, title=title, image=str(path)))
        return scan


LIST_FILE = Plugin("list_file", ListFileSettings, ListFileSource, "A text file: category | title | image, a line each.")


# -- a backbone: a small Keras CNN built here, random weights -------------------------------
def _tiny_cnn(settings: ModelSettings):
    import keras

    keras.utils.set_random_seed(7)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(x)
    x = keras.layers.Conv2D(16, 3, activation="relu")(x)
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x)), None


TINY = Plugin("tiny_cnn", ModelSettings, _tiny_cnn, "Two convolutions, for tests.", input_size=32)


def _plugins():
    return default_plugins().including(LIST_FILE, backbones=[TINY])


def _collection(root: Path) -> list[tuple[str, str, str]]:
    """Sixteen images of the example collection copied beside a list file naming them, and a bad line."""
    chosen = []
    for category in ("photographs", "illustrations"):
        for image in sorted((COLLECTION / category).iterdir())[:8]:
            shutil.copy(image, root / image.name)
            chosen.append((category, f"{category.title()} {image.stem}", image.name))
    (root / "items.txt").write_text("\n".join(" | ".join(c) for c in chosen) + "\nnot a valid line\n",
                                    encoding="utf-8")
    return chosen


# -- tests ----------------------------------------------------------------------------------
def test_a_registered_source_builds_a_site_end_to_end(tmp_path: Path) -> None:
    chosen = _collection(tmp_path)
    data = {"site": {"title": "Listan"}, "source": {"type": "list_file", "path": "items.txt"},
            "model": {"name": "tiny_cnn", "weights": "none", "batch_size": 4},
            "output_dir": "site", "state_dir": "state"}
    settings = parse_settings(data, "config.yaml", tmp_path, _plugins())
    assert settings.source.path == tmp_path / "items.txt"  # paths of a new source are anchored too
    # The render's processes get the settings by pickle: they hold the module's own classes.
    assert type(settings.source) is ListFileSettings and pickle.loads(pickle.dumps(settings)) == settings
    report = Report(verbosity=0)
    with StateStore(settings.state_dir) as store:
        build.run(settings, store, report)
    items = json.loads((tmp_path / "site/api/v1/items.json").read_text(encoding="utf-8"))["items"]
    assert sorted(it["title"] for it in items) == sorted(title for _, title, _ in chosen)
    assert {it["category"] for it in items} == {"photographs", "illustrations"}
    for it in items:
        assert (tmp_path / "site" / it["url"]).is_file()
        neighbors = json.loads((tmp_path / "site" / it["neighbors_url"]).read_text(encoding="utf-8"))
        assert neighbors["neighbors"], it["id"]
    assert report.problems[f"{tmp_path / 'items.txt'}:17"] == "expected category | title | image"


def test_a_registration_stays_with_the_settings_it_was_made_for(tmp_path: Path) -> None:
    data = {"source": {"type": "list_file"}}
    assert parse_settings(data, "c.yaml", tmp_path, _plugins()).source.type == "list_file"
    with pytest.raises(ConfigError) as caught:
        parse_settings(data, "c.yaml", tmp_path)  # the default registry never saw it
    assert str(caught.value) == "c.yaml: source.type: 'list_file' is not one of local, json_api, iiif, csv"
    with pytest.raises(ConfigError, match=r"c\.yaml: source\.separatr: unknown key \(expected one of: type, path, "
                                          r"separator\)"):
        parse_settings({"source": {"type": "list_file", "separatr": ";"}}, "c.yaml", tmp_path, _plugins())


def test_a_registered_backbone_is_usable_by_name(tmp_path: Path) -> None:
    settings = parse_settings({"model": {"name": "tiny_cnn", "weights": "none"}}, "c.yaml", tmp_path, _plugins())
    assert descriptor_model_id(settings.model).startswith("tiny_cnn/none/")
    files = sorted((COLLECTION / "photographs").iterdir())[:3]

    def images(size: int) -> np.ndarray:
        return np.stack([np.asarray(Image.open(p).convert("RGB").resize((size, size))) for p in files])

    plain = load_backbone("tiny_cnn", "none", _plugins().backbones)
    assert plain.input_size == 32 and plain.features(images(32)).shape == (3, 16)
    described = load_descriptor(settings.model)  # GeM over three scales of its feature map
    vectors = described.features(images(described.input_size))
    assert vectors.shape == (3, 16) and np.isfinite(vectors).all()
    assert not np.allclose(vectors[0], vectors[1])
    with pytest.raises(BackboneError, match="model.name: 'tiny_cnn' is not one of efficientnet_lite0"):
        load_backbone("tiny_cnn", "none")
    with pytest.raises(ConfigError, match="model.name: 'tiny_cnn' is not one of"):
        parse_settings({"model": {"name": "tiny_cnn"}}, "c.yaml", tmp_path)


def test_a_name_registered_twice_is_refused_in_one_line() -> None:
    with pytest.raises(PluginError, match=r"^source type 'local' is registered twice \(built-in and built-in\)$"):
        default_plugins().including(Plugin("local", ListFileSettings, ListFileSource, "again"))


def _distribution(root: Path, entry_points: str, module: str = "") -> None:
    """A package as pip would leave it: a module and a .dist-info folder with entry_points.txt."""
    info = root / "archive_sim_extra-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: archive-sim-extra\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))
    if module:
        (root / "archive_sim_extra.py").write_text(textwrap.dedent(module))


def test_an_entry_point_adds_a_source_type(tmp_path: Path, monkeypatch) -> None:
    _distribution(tmp_path, """
        [archive_sim.sources]
        letters = archive_sim_extra:LETTERS
        """, """
        from typing import Literal
        from pydantic import Field
        from archive_sim.plugins import Plugin
        from archive_sim.settings_base import Section

        class LettersSettings(Section):
            type: Literal["letters"] = Field(description="Letters.")
            folder: str = Field("letters", description="Where the letters are.")

        LETTERS = Plugin("letters", LettersSettings, object, "Scanned letters, a folder per year.")
        """)
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = load_registry("source type", "source.type", ("archive_sim.sources.local:SOURCE",),
                             "archive_sim.sources")
    assert registry.names() == ["local", "letters"]
    letters = registry.get("letters")
    assert "entry point 'letters'" in letters.origin and letters.description.startswith("Scanned letters")
    sys.modules.pop("archive_sim_extra", None)


def test_a_broken_entry_point_is_one_line_naming_it(tmp_path: Path, monkeypatch) -> None:
    _distribution(tmp_path, """
        [archive_sim.backbones]
        vit = archive_sim_missing_module:BACKBONE
        """)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError) as caught:
        load_registry("backbone", "model.name", (), "archive_sim.backbones")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("entry point 'vit' in archive_sim.backbones = 'archive_sim_missing_module:BACKBONE' "
                              "cannot be loaded: ModuleNotFoundError")


def test_the_plugins_command_lists_what_is_registered(capsys) -> None:
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    for name in ("local", "json_api", "iiif", "csv", "efficientnet_lite0", "ResNet50"):
        line = next(x for x in lines if x.split()[:1] == [name])
        assert len(line.split(None, 1)[1]) > 20, line  # a description, not just the name
    assert main(["plugins", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in document["sources"]] == ["local", "json_api", "iiif", "csv"]


def test_every_option_of_every_command_says_what_it_does() -> None:
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command_name").choices
    assert set(commands) == {"build", "fetch", "embed", "index", "map", "render", "serve", "query", "compare",
                             "evaluate", "plugins"}
    for name, sub in commands.items():
        assert sub.description and len(sub.description) > 40, name
        for action in sub._actions:
            assert action.help and len(action.help) > 10, f"{name} {action.option_strings or action.dest}"


def _fields(model, prefix: str):
    for name, field in model.model_fields.items():
        yield f"{prefix}{name}", field
        inner = field.annotation
        if isinstance(inner, type) and issubclass(inner, Section):
            yield from _fields(inner, f"{prefix}{name}.")


def test_the_configuration_reference_documents_registered_plugins_and_every_field() -> None:
    text = settings_reference(_plugins())
    assert "### `source` with `type: list_file`\n\nA text file: category | title | image, a line each." \
        not in text  # the pipe of a description is escaped in the text too
    assert "### `source` with `type: list_file`\n\nA text file: category \\| title \\| image, a line each." in text
    assert "| `source.separator` | text | `\\|` | What separates category, title and image path on a line. |" in text
    assert "| `tiny_cnn` | 32 px | Two convolutions, for tests. |" in text
    assert "| `efficientnet_lite0` | 224 px |" in text
    models = [("", Settings), *(("source.", p.settings) for p in _plugins().sources), ("model.", ModelSettings)]
    for prefix, model in models:
        for key, field in _fields(model, prefix):
            assert field.description, f"{key} has no description"
