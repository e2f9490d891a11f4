"""The run config: validation names the field, the hash is canonical, profiles and schedules."""
from __future__ import annotations

import numpy as np
import pytest

from bumpdiff_core.config import (PROFILES, ConfigError, RunConfig, checkpoint_steps, parse_override,
                                  profile_config, resolve_tap, tap_layer_names)


def test_the_three_required_profiles_exist_and_validate():
    for name in ("tiny", "quick", "paper"):
        assert name in PROFILES
        assert isinstance(profile_config(name), RunConfig)
    assert profile_config("paper").image_size == 32  # the paper's N


def test_run_id_is_a_hash_of_the_semantic_config():
    a = profile_config("tiny")
    assert a.run_id == profile_config("tiny").run_id
    assert a.run_id == RunConfig.from_dict(a.to_dict()).run_id
    assert a.replace(sigma=1).run_id == a.replace(sigma=1.0).run_id  # 1 and 1.0 are one value
    assert a.replace(seed=1).run_id != a.run_id
    assert a.replace(increment_x=0.5).run_id != a.run_id


def test_round_trip_through_dict():
    c = profile_config("paper")
    assert RunConfig.from_dict(c.to_dict()) == c


@pytest.mark.parametrize("field, value, words", [
    ("sigma", 0.0, "> 0"),
    ("sigma", -1.0, "> 0"),
    ("increment_x", 0.0, "> 0"),
    ("increment_y", 16.0, "< image_size (16)"),
    ("image_size", 12, "multiple of 8"),
    ("steps", 0, ">= 1"),
    ("tap_layer", "layer9", "layer1..layer8"),
    ("eval_sampler", "euler", "'ddim' or 'ddpm'"),
])
def test_invalid_values_name_the_field_and_the_allowed_range(field, value, words):
    with pytest.raises(ConfigError) as err:
        RunConfig(**{field: value})
    assert err.value.field_name == field
    assert str(err.value).startswith(f"{field}: ")
    assert words in str(err.value)


def test_unknown_field_and_unknown_profile():
    with pytest.raises(ConfigError) as err:
        RunConfig.from_dict({"sigmaa": 1.0})
    assert err.value.field_name == "sigmaa"
    with pytest.raises(ConfigError) as err:
        profile_config("huge")
    assert err.value.field_name == "profile" and "tiny" in str(err.value)


def test_parse_override_types_values_by_field():
    assert parse_override("sigma=1.5") == ("sigma", 1.5)
    assert parse_override("steps=10") == ("steps", 10)
    assert parse_override("channel_mults=1,2,4") == ("channel_mults", (1, 2, 4))
    assert parse_override("coord_channels=true") == ("coord_channels", True)
    for text in ("sigma=abc", "steps=1.5", "sigma=nan", "sigma=inf", "nosuchfield=1"):
        with pytest.raises(ConfigError) as err:
            parse_override(text)
        assert err.value.field_name == text.split("=")[0]


def test_checkpoint_schedule_is_dense_early_then_log_spaced():
    c = profile_config("quick", dict(steps=20000, checkpoint_dense_every=100, checkpoint_dense_until=1000,
                                     checkpoint_log_count=8))
    steps = checkpoint_steps(c)
    assert steps[0] == 0 and steps[-1] == c.steps
    assert steps == sorted(set(steps))
    dense = [s for s in steps if s <= 1000]
    assert dense == list(range(0, 1001, 100))
    late = np.array([s for s in steps if s >= 1000], dtype=float)
    assert len(late) == 9  # 1000 and 8 log-spaced points after it
    ratios = late[1:] / late[:-1]
    np.testing.assert_allclose(ratios, (20000 / 1000) ** (1 / 8), rtol=0.01)  # geometric spacing


def test_checkpoint_schedule_always_holds_zero_and_the_last_step():
    for name in PROFILES:
        steps = checkpoint_steps(profile_config(name))
        assert steps[0] == 0 and steps[-1] == profile_config(name).steps
    odd = profile_config("tiny", dict(steps=55, checkpoint_dense_every=20, checkpoint_dense_until=60))
    assert checkpoint_steps(odd) == [0, 20, 40, 55]


def test_layer_names_and_layer4():
    assert tap_layer_names(3) == ["stem", "down1", "down2", "down3", "mid", "up1", "up2", "up3"]
    for i, name in enumerate(tap_layer_names(3), start=1):
        assert resolve_tap(f"layer{i}", 3) == name
        assert resolve_tap(name, 3) == name
    assert resolve_tap("layer4", 3) == "down3"
    with pytest.raises(ConfigError):
        resolve_tap("layer0", 3)


def test_command_line_overrides_report_a_wrong_type_with_the_allowed_range():
    from bumpdiff_core.config import allowed_range, config_from_overrides

    assert config_from_overrides("tiny", ["steps=5", "sigma=0.5"]) == profile_config("tiny", dict(steps=5, sigma=0.5))
    # the range follows the other overrides: sigma <= N / 2 with N = 16
    with pytest.raises(ConfigError) as err:
        config_from_overrides("tiny", ["image_size=16", "sigma=wide"])
    assert str(err.value) == "sigma: must be a finite number, > 0 and <= 8.0; got 'wide'"
    assert allowed_range("steps", profile_config("tiny")) == ">= 1 and <= 10000000"
    assert allowed_range("tap_layer", profile_config("tiny")) is None  # not numeric
