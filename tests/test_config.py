"""A wrong config.yaml stops the run at once with exit code 2 and one line that
names the key and the value; a right one resolves its paths where it lives."""

from __future__ import annotations

from pathlib import Path

import pytest

from archive_sim.cli import main
from archive_sim.config import ConfigError, Settings, load_settings, settings_for_folder

REPO = Path(__file__).resolve().parents[1]


def _run_with(tmp_path: Path, capsys, text: str | bytes, command: str = "fetch") -> str:
    config = tmp_path / "config.yaml"
    if isinstance(text, bytes):
        config.write_bytes(text)
    else:
        config.write_text(text, encoding="utf-8")
    code = main([command, "--config", str(config)])
    out, err = capsys.readouterr()
    assert code == 2, err
    assert "Traceback" not in err and "Traceback" not in out
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1, err
    assert lines[0].startswith("archive-sim: ")
    assert str(config) in lines[0]  # which file
    # Nothing was started: no state folder beside the config.
    assert not (tmp_path / ".archive-sim").exists()
    return lines[0]


def test_a_wrong_type_names_the_key_and_the_value(tmp_path, capsys):
    line = _run_with(tmp_path, capsys, "neighbors:\n  k: many\n")
    assert "neighbors.k" in line and "'many'" in line
    assert "integer" in line


def test_a_bad_value_names_the_key_the_value_and_what_is_allowed(tmp_path, capsys):
    line = _run_with(tmp_path, capsys, "site:\n  language: de\n")
    assert "site.language" in line and "'de'" in line
    assert "'sv'" in line and "'en'" in line


def test_an_unknown_source_type_or_model_lists_the_registered_ones(tmp_path, capsys):
    line = _run_with(tmp_path, capsys, "source:\n  type: xyz\n")
    assert line.endswith(": source.type: 'xyz' is not one of local, json_api, iiif, csv")
    line = _run_with(tmp_path, capsys, "model:\n  name: ResNet5O\n")
    assert ": model.name: 'ResNet5O' is not one of efficientnet_lite0, efficientnet_lite1, " in line
    assert "ResNet50" in line.split("is not one of", 1)[1]


def test_a_key_of_another_source_type_names_the_keys_of_this_one(tmp_path, capsys):
    line = _run_with(tmp_path, capsys, "source:\n  type: csv\n  url: https://example.org/\n")
    assert line.endswith("source.url: unknown key (expected one of: type, path, base_url, columns, metadata, "
                         "categories, follow_symlinks)")


def test_an_out_of_range_number_says_the_limit(tmp_path, capsys):
    line = _run_with(tmp_path, capsys, "neighbors:\n  k: 0\n")
    assert "neighbors.k = 0" in line and "1" in line.split("neighbors.k = 0", 1)[1]


def test_an_unknown_key_in_a_section_is_named_with_the_keys_allowed(tmp_path, capsys):
    line = _run_with(tmp_path, capsys, "neighbors:\n  kk: 3\n")
    assert "neighbors.kk" in line and "unknown key" in line
    assert "k, trees, duplicate_threshold" in line


def test_a_top_level_typo_is_named_with_the_sections_allowed(tmp_path, capsys):
    line = _run_with(tmp_path, capsys, "neighbours:\n  k: 3\n")
    assert "neighbours" in line and "unknown key" in line
    assert "neighbors" in line.split("unknown key", 1)[1]


def test_several_problems_report_the_first_and_count_the_rest(tmp_path, capsys):
    line = _run_with(tmp_path, capsys, "site:\n  language: de\nneighbors:\n  k: many\n")
    assert "site.language" in line and "1 more problem" in line


@pytest.mark.parametrize("text, where", [
    ("site:\n  title: [unclosed\n", "line 3"),
    ("site: title: x\n", "line 1"),
    ("site:\n\ttitle: x\n", "line 2"),
    ("site:\n  title: a\x07b\n", "line 2"),  # a control character: a YAML reader error
])
def test_invalid_yaml_gives_one_line_with_the_line_number(tmp_path, capsys, text, where):
    line = _run_with(tmp_path, capsys, text)
    assert "not valid YAML" in line and where in line


def test_a_file_not_saved_as_utf8_is_named_not_crashed_on(tmp_path, capsys):
    line = _run_with(tmp_path, capsys, "site:\n  title: Bildarkiv för Göteborg\n".encode("latin-1"))
    assert "line 2" in line and "UTF-8" in line


def test_a_list_at_the_top_level_is_refused(tmp_path, capsys):
    line = _run_with(tmp_path, capsys, "- site\n- map\n")
    assert "mapping" in line


def test_yaml_tags_cannot_run_code(tmp_path, capsys):
    marker = tmp_path / "pwned"
    line = _run_with(tmp_path, capsys, f"site: !!python/object/apply:os.system ['touch {marker}']\n")
    assert "not valid YAML" in line
    assert not marker.exists()


def test_a_missing_config_file_is_exit_2_with_a_hint(tmp_path, capsys):
    code = main(["fetch", "--config", str(tmp_path / "nope.yaml")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "not found" in err and "--images" in err


def test_an_empty_config_file_means_all_defaults(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("# nothing set yet\n", encoding="utf-8")
    settings = load_settings(config)
    assert settings.site.language == "sv"
    assert settings.neighbors.k == 30
    assert settings.output_dir == tmp_path.resolve() / "site"


def test_relative_paths_are_relative_to_the_config_file_not_the_working_folder(tmp_path, monkeypatch):
    project = tmp_path / "project"
    project.mkdir()
    config = project / "config.yaml"
    config.write_text(
        "source:\n  path: collection/photos\n  metadata: meta.csv\n"
        "state_dir: ../state\noutput_dir: public/site\n", encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    settings = load_settings(Path("..") / "project" / "config.yaml")
    assert settings.source.path == project.resolve() / "collection" / "photos"
    assert settings.source.metadata == project.resolve() / "meta.csv"
    assert settings.state_dir == tmp_path.resolve() / "state"
    assert settings.output_dir == project.resolve() / "public" / "site"
    for p in (settings.source.path, settings.state_dir, settings.output_dir):
        assert p.is_absolute()


def test_absolute_paths_are_kept(tmp_path):
    target = tmp_path / "abs" / "site"
    config = tmp_path / "config.yaml"
    config.write_text(f"output_dir: {target}\n", encoding="utf-8")
    assert load_settings(config).output_dir == target.resolve()


def test_the_bundled_example_config_is_valid():
    settings = load_settings(REPO / "config.yaml")
    assert isinstance(settings, Settings)
    assert settings.source.path == REPO / "examples" / "collection"
    assert settings.source.path.is_dir()


def test_settings_for_a_plain_folder_keep_state_beside_the_site(tmp_path):
    images = tmp_path / "Vykort"
    images.mkdir()
    out = tmp_path / "public" / "site"
    settings = settings_for_folder(images, out)
    assert settings.source.path == images.resolve()
    assert settings.output_dir == out.resolve()
    # Beside the site, not inside it (publishing replaces the site folder) and not
    # inside the images (a rescan would see it).
    assert settings.state_dir.parent == out.resolve().parent
    assert settings.state_dir != settings.output_dir
    assert not settings.state_dir.is_relative_to(settings.output_dir)
    assert not settings.state_dir.is_relative_to(images.resolve())
    assert settings.site.title == "Vykort"


def test_config_errors_are_config_errors_for_callers_too(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("map:\n  perplexity: lots\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"map\.perplexity = 'lots'"):
        load_settings(config)
