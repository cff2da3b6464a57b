"""The shipped config files define exactly the configs that verify/configs.py defined in Python."""
from __future__ import annotations

from verify.configs import DEFAULT_CONFIGS, shipped_configs


def test_the_files_define_the_python_configs_exactly():
    loaded = shipped_configs()
    python = {config.name: config for config in DEFAULT_CONFIGS}
    assert sorted(loaded) == sorted(python)
    for name, config in python.items():
        assert loaded[name] == config, name
        assert loaded[name].to_dict() == config.to_dict(), name
        assert {key: type(value) for key, value in loaded[name].to_dict().items()} == {
            key: type(value) for key, value in config.to_dict().items()}, name
