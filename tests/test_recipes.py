"""Recipe files: TOML written by scdd reads back to the same settings; presets export to recipes that resolve
to the preset's config; manifests and JSON are recipes; the command line wins; errors are one line."""

import json

import pytest
from click.testing import CliRunner

from scdd.cli import cli
from scdd.config import make_run_config, to_dict
from scdd.errors import ConfigError
from scdd.presets import PRESETS
from scdd.recipes import merge, read_recipe, recipe_config, to_toml


def test_toml_round_trip_with_comments(tmp_path):
    values = {
        "dataset": "imagefolder",
        "data_root": None,
        "seed": 3,
        "dataset_options": {},
        "squeeze": {"pretrainer": "moco-v3", "pretrainer_options": {"epochs": 8, "lr": 5e-4, "local_crop_scale": [0.1, 0.3]}},
        "recover": {"iterations": 300, "flip": False, "jitter": 32 / 224, "name with space": 'a "quoted" ü'},
    }
    text = to_toml(values, {"recover.iterations": "Table 16", "data_root": "set --data-root"}, header="line one\n\nline two")
    assert text.startswith("# line one\n#\n# line two\n")
    assert "iterations = 300  # Table 16" in text and "# data_root is not set: set --data-root" in text
    path = tmp_path / "recipe.toml"
    path.write_text(text)
    expected = {key: value for key, value in values.items() if value is not None}
    assert read_recipe(path) == expected


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_exported_preset_resolves_to_the_preset(tmp_path, name):
    result = CliRunner().invoke(cli, ["presets", "export", name, "--out", str(tmp_path / "preset.toml")])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "preset.toml").read_text()
    assert f'preset = "{name}"' in text and "# " in text.split("\n", 1)[1]  # sources as comments
    dataset = {"dataset": PRESETS[name]["dataset"]} if "dataset" in PRESETS[name] else {}
    assert to_dict(recipe_config(tmp_path / "preset.toml", None, dataset)) == to_dict(make_run_config(dataset, name))
    (tmp_path / "bare.toml").write_text(text.replace(f'preset = "{name}"', ""))  # the values alone: no preset beneath
    folder = {"dataset": "imagefolder"}  # a dataset with no preset of its own
    assert to_dict(recipe_config(tmp_path / "bare.toml", None, folder)) == to_dict(make_run_config(folder, name))


def test_command_line_wins_over_recipe_over_preset(tmp_path):
    path = tmp_path / "recipe.toml"
    path.write_text('preset = "mnist5k"\nseed = 4\n[recover]\nipc = 3\niterations = 7\n')
    config = recipe_config(path, None, {"recover": {"ipc": 5}})
    assert (config.seed, config.recover.ipc, config.recover.iterations) == (4, 5, 7)
    assert (
        config.posttrain.temperature
        == make_run_config({}, "mnist5k").posttrain.temperature
        != make_run_config({}, "cifar100").posttrain.temperature
    )
    assert recipe_config(path, "cifar100", {}).posttrain.temperature == make_run_config({}, "cifar100").posttrain.temperature
    (tmp_path / "typo.toml").write_text("[recover]\niteration = 3\n")
    with pytest.raises(ConfigError, match="has no setting 'iteration'"):
        recipe_config(tmp_path / "typo.toml", None, {})


def test_manifest_and_json_recipes(tmp_path):
    recorded = make_run_config({"seed": 7, "recover": {"ipc": 2}, "posttrain": {"epochs": 3}}, "cifar100")
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"scdd_manifest": 1, "config": to_dict(recorded), "stages": {}}))
    assert to_dict(recipe_config(manifest, None, {})) == to_dict(recorded)  # no preset or default preset beneath
    assert recipe_config(manifest, None, {"seed": 8}).seed == 8
    with pytest.raises(ConfigError, match="repeats that run's settings; leave out --preset"):
        recipe_config(manifest, "mnist5k", {})
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({"posttrain": {"epochs": 5}}))
    assert read_recipe(plain) == {"posttrain": {"epochs": 5}}
    assert merge({"recover": {"ipc": 2, "iterations": 9}, "seed": 1}, {"recover": {"ipc": 4}}) == {
        "recover": {"ipc": 4, "iterations": 9},
        "seed": 1,
    }


def test_bad_recipes_are_one_line(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        read_recipe(tmp_path / "missing.toml")
    (tmp_path / "bad.toml").write_text("[recover]\niterations = = 3\n")
    with pytest.raises(ConfigError, match=r"bad.toml: not valid TOML \(.*line 2"):
        read_recipe(tmp_path / "bad.toml")
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(ConfigError, match="expected a table of settings, found list"):
        read_recipe(tmp_path / "bad.json")
    with pytest.raises(ConfigError, match="object values cannot be written"):
        to_toml({"x": object()})


def test_bad_recipe_on_the_command_line_is_one_line(tmp_path):
    (tmp_path / "bad.toml").write_text("seed = \n")
    result = CliRunner().invoke(cli, ["run", "--config", str(tmp_path / "bad.toml"), "--out", str(tmp_path / "run")])
    assert result.exit_code != 0 and "bad.toml: not valid TOML" in result.output and not (tmp_path / "run").exists()
