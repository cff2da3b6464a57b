"""Invalid-parameter cases generated from the declarations of the training configs (the sweep's and
the real tasks': ``ftstab real``'s and the practitioners' protocol) and optimiser specs
(``PARAMETER_CONSTRAINTS``, synth.validation's vocabulary): every invalid example of every
declared parameter is refused in the one message format, naming the parameter. The generators'
battery is tests/synth/test_declared_constraints.py, the stabilisers' tests/reliability/test_bad_input.py."""
from __future__ import annotations

import pytest

from verify import configs, optimiser_spec
from verify.configs import TrainingConfig
from verify.optimiser_spec import OptimiserSpec
from verify.real import configs as real_configs
from verify.real.configs import RealConfig
from verify.real.protocol import config as protocol_config
from verify.real.protocol.config import ProtocolConfig

CONFIG_BASE = dict(name="c", setting="full", kinds=("mlp",), loss="logistic", init="random",
                   lr_scale=1.0, n_steps=10)
DECLARED = {
    "TrainingConfig": (TrainingConfig, configs.PARAMETER_CONSTRAINTS, CONFIG_BASE),
    "OptimiserSpec": (OptimiserSpec, optimiser_spec.PARAMETER_CONSTRAINTS, {}),
    "RealConfig": (RealConfig, real_configs.PARAMETER_CONSTRAINTS,
                   dict(name="r", setting="head", kinds=("real-digits",), n_steps=10, lr_scale=1.0)),
    "ProtocolConfig": (ProtocolConfig, protocol_config.PARAMETER_CONSTRAINTS,
                       dict(name="p", encoder="minilm-l3", n_steps=10)),
}


def invalid_cases():
    for owner, (cls, constraints, base) in DECLARED.items():
        for name, allowed in constraints.items():
            examples = [bad for constraint in allowed for bad in constraint.invalid_examples({})]
            for number, bad in enumerate(examples):
                if not any(constraint.is_satisfied_by(bad, {}) for constraint in allowed):
                    yield pytest.param(cls, base, name, bad, id=f"{owner}-{name}-{number}-{bad!r:.30}")


CASES = list(invalid_cases())


def test_every_field_is_declared_and_every_declaration_is_tested():
    for cls, constraints, _ in DECLARED.values():
        assert list(constraints) == list(cls.__dataclass_fields__)
    covered = {(case.values[0].__name__, case.values[2]) for case in CASES}
    assert covered == {(cls.__name__, name) for cls, constraints, _ in DECLARED.values()
                       for name in constraints}


@pytest.mark.parametrize("cls, base, name, bad", CASES)
def test_every_declared_bound_is_refused_naming_the_parameter(cls, base, name, bad):
    with pytest.raises(ValueError) as error:
        cls(**{**base, name: bad})
    message = str(error.value)
    assert message.startswith(f"{name} must be ") and f" (got {bad!r})" in message
    assert "\n" not in message


@pytest.mark.parametrize("cls, base", [(cls, base) for cls, _, base in DECLARED.values()])
def test_the_bases_and_every_default_are_valid(cls, base):
    assert cls(**base).to_dict()


@pytest.mark.parametrize("lr, lr_scale", [(None, None), (0.1, 1.0)])
def test_a_real_config_takes_exactly_one_of_lr_and_lr_scale(lr, lr_scale):
    with pytest.raises(ValueError, match=r"^lr must be given exactly when lr_scale is None \(got "
                                         f"lr={lr!r}, lr_scale={lr_scale!r}\\)$"):
        RealConfig(name="r", setting="full", kinds=("real-digits",), n_steps=10, lr=lr,
                   lr_scale=lr_scale)
