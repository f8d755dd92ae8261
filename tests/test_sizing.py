"""Settings sized to the data and the device for a dataset without a preset; presets and the command line win."""

import pytest
from test_idx_datasets import _family_files

from scdd.config import make_run_config
from scdd.resolve import resolve_run
from scdd.sizing import DataShape, sized_settings


def _values(rows):
    return {setting: value for setting, value, _ in rows}


def test_sizing_rules_follow_the_data_and_the_device():
    digits = _values(sized_settings(DataShape(32, 1, 10, 1437, 140), "cpu")[1])
    assert digits["squeeze.architecture"] == "resnet10-slim" and digits["posttrain.students"] == ["resnet10-slim"]
    assert digits["squeeze.pretrainer_options.epochs"] == round(24_000 / 1437)  # 17 epochs of 1,437 images
    assert digits["squeeze.pretrainer_options.batch_size"] == 128  # 1437 / 8 → 128
    assert digits["recover.ipc"] == 10 and digits["recover.iterations"] == 300 and digits["posttrain.epochs"] == 200
    big = _values(sized_settings(DataShape(28, 1, 10, 60_000, 5421), "cpu")[1])
    assert big["squeeze.pretrainer_options.epochs"] == 2 and big["squeeze.pretrainer_options.batch_size"] == 256
    tiny = _values(sized_settings(DataShape(8, 3, 10, 500, 3), "cpu")[1])
    assert tiny["squeeze.pretrainer_options.epochs"] == 200 and tiny["squeeze.pretrainer_options.batch_size"] == 32
    assert tiny["recover.ipc"] == 3  # at most the smallest class
    large = _values(sized_settings(DataShape(224, 3, 100, 100_000, 900), "cuda")[1])
    assert large["squeeze.architecture"] == "resnet18" and large["recover.iterations"] == 1000
    assert large["posttrain.epochs"] == 300 and large["squeeze.pretrainer_options.epochs"] == 2
    nested, _ = sized_settings(DataShape(32, 1, 10, 1437, 140), "cpu")
    assert nested["squeeze"]["pretrainer_options_by_name"]["moco-v3"]["temperature"] == 0.2  # MoCo v3's own


@pytest.fixture(scope="module")
def fashion(tmp_path_factory):
    root = tmp_path_factory.mktemp("fashion")
    _family_files(root, train=80, test=20, seed=3)
    return root


def test_sizing_applies_without_a_preset_and_yields_to_the_command_line(fashion):
    given = {"dataset": "fashion-mnist", "data_root": str(fashion), "device": "cpu"}
    resolved = resolve_run({**given, "recover": {"iterations": 7}})
    config, sizing = resolved.config, resolved.notes["sizing"]
    assert config.squeeze.architecture == "resnet10-slim" and config.recover.iterations == 7 and len(resolved.data.train) == 80
    assert sizing["inputs"] == {"image_size": 28, "channels": 1, "classes": 10, "train_images": 80,
                                "smallest_class": sizing["inputs"]["smallest_class"], "device": "cpu"}
    chosen = _values(sizing["settings"])
    assert "recover.iterations" not in chosen and chosen["squeeze.pretrainer_options.batch_size"] == 32
    assert config.squeeze.pretrainer_options["temperature"] == chosen["squeeze.pretrainer_options.temperature"] == 0.2
    assert config.posttrain.epochs == chosen["posttrain.epochs"] == 200 != make_run_config(given).posttrain.epochs
    swav = resolve_run({**given, "squeeze": {"pretrainer": "swav"}})
    assert "squeeze.pretrainer_options.temperature" not in _values(swav.notes["sizing"]["settings"])  # MoCo v3's only
    default = resolve_run({})
    assert default.notes == {} and default.data is None and default.config == make_run_config({})  # mnist5k keeps its preset
    assert resolve_run(given, "mnist5k").notes == {}
