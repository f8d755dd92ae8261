"""Settings sized to the data and the device for a dataset without a preset; presets and the command line win."""

import json

import pytest
from test_idx_datasets import _family_files

import scdd.sizing
from scdd.config import make_run_config
from scdd.resolve import resolve_run
from scdd.sizing import DataShape, fit_budgets, sized_settings
from scdd.unit_clock import StageEstimate, TimePlan


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


def _machine(squeeze: float, recover: float, posttrain: float) -> TimePlan:
    """A measured plan: each loop's seconds, of which 1 s is set-up; align 20 s, evaluate 5 s; 30 s of measuring."""
    loops = {"squeeze": squeeze, "recover": recover, "relabel": posttrain / 4, "posttrain": posttrain}
    stages = [StageEstimate(name, seconds, 100, fixed_seconds=1.0) for name, seconds in loops.items()]
    return TimePlan("cpu", 1, [*stages[:1], StageEstimate("align", 20.0), *stages[1:], StageEstimate("evaluate", 5.0)], 30.0)


@pytest.fixture
def measured(monkeypatch):
    """Sizing's time measurement replaced by the plan ``measured.plan``; the configs it measured in ``measured.calls``."""

    class Measured:
        plan = _machine(1.0, 1.0, 1.0)  # a fast machine: the budgets stay as the rules chose them
        calls: list = []

    monkeypatch.setattr(scdd.sizing, "estimate_run", lambda config, data, device: Measured.calls.append(config) or Measured.plan)
    return Measured


def test_budgets_are_scaled_by_one_factor_to_fit_the_time():
    plan = _machine(901.0, 301.0, 241.0)  # 1,528.25 s, of which 1,499.25 s grow with the budgets
    budgets = {"squeeze.pretrainer_options.epochs": 200, "recover.iterations": 300, "posttrain.epochs": 200}
    fitted, factor = fit_budgets(plan, budgets, 480.0)
    assert factor == pytest.approx((480 - 30 - 29) / 1499.25)  # measuring, set-ups, align and evaluate come first
    assert fitted == {
        "squeeze.pretrainer_options.epochs": int(200 * factor),
        "recover.iterations": int(300 * factor),
        "posttrain.epochs": int(200 * factor),
    }
    alone, factor = fit_budgets(plan, {"recover.iterations": 300}, 480.0)  # the others set by hand: only recovery shrinks
    assert factor == 0.0 and alone == {"recover.iterations": 50}  # to its least value; the plan then runs over
    assert fit_budgets(_machine(10.0, 10.0, 10.0), budgets, 480.0) == (budgets, 1.0)  # never longer than the rules' budgets


def test_a_slow_machine_gets_shorter_budgets_recorded_and_kept_by_the_same_folder(fashion, measured, tmp_path):
    given = {"dataset": "fashion-mnist", "data_root": str(fashion), "device": "cpu", "posttrain": {"epochs": 30}}
    measured.plan = _machine(901.0, 301.0, 4.0)
    resolved = resolve_run(given)
    config, sizing = resolved.config, resolved.notes["sizing"]
    squeeze, recover = config.squeeze.pretrainer_options["epochs"], config.recover.iterations
    assert len(measured.calls) == 1 and measured.calls[0].recover.iterations == 300  # measured with the rules' budgets
    factor = (480 - 30 - 32) / 1200  # 418 s left for the 1,200 s of the two budgets sizing still sets
    assert (squeeze, recover, config.posttrain.epochs) == (int(200 * factor), int(300 * factor), 30)
    chosen = {setting: why for setting, _, why in sizing["settings"]}
    assert chosen["recover.iterations"].endswith("x 0.35 to fit 8 min at the speed measured here") and "posttrain.epochs" not in chosen
    assert resolved.plan.stage("recover").seconds == pytest.approx(1 + recover) and resolved.notes["plan"]["seconds"] <= 480 - 30
    (tmp_path / "manifest.json").write_text(json.dumps({"sizing": sizing}))  # the run folder of that run
    measured.plan = _machine(1.0, 1.0, 1.0)  # the machine is idle now: the same command still continues the same run
    again = resolve_run(given, out=tmp_path)
    assert again.config == config and again.plan is None and len(measured.calls) == 1
    assert resolve_run({**given, "seed": 1}, out=tmp_path).config.recover.iterations == recover  # budgets kept, seed is the command's
    assert resolve_run({**given, "posttrain": {"epochs": 31}}, out=tmp_path).config.posttrain.epochs == 31


def test_sizing_applies_without_a_preset_and_yields_to_the_command_line(fashion, measured):
    given = {"dataset": "fashion-mnist", "data_root": str(fashion), "device": "cpu"}
    resolved = resolve_run({**given, "recover": {"iterations": 7}})
    config, sizing = resolved.config, resolved.notes["sizing"]
    assert config.squeeze.architecture == "resnet10-slim" and config.recover.iterations == 7 and len(resolved.data.train) == 80
    assert sizing["inputs"] == {
        "image_size": 28,
        "channels": 1,
        "classes": 10,
        "train_images": 80,
        "smallest_class": sizing["inputs"]["smallest_class"],
        "device": "cpu",
    }
    chosen = _values(sizing["settings"])
    assert "recover.iterations" not in chosen and chosen["squeeze.pretrainer_options.batch_size"] == 32
    assert config.squeeze.pretrainer_options["temperature"] == chosen["squeeze.pretrainer_options.temperature"] == 0.2
    assert config.posttrain.epochs == chosen["posttrain.epochs"] == 200 != make_run_config(given).posttrain.epochs
    swav = resolve_run({**given, "squeeze": {"pretrainer": "swav"}})
    assert "squeeze.pretrainer_options.temperature" not in _values(swav.notes["sizing"]["settings"])  # MoCo v3's only
    default = resolve_run({})
    assert default.notes == {} and default.data is None and default.config == make_run_config({})  # mnist5k keeps its preset
    assert resolve_run(given, "mnist5k").notes == {}
