"""Stabilisers as plug-ins of the trainers: one small file each, one API (:mod:`.base`).

Every module of this package other than :mod:`.base` is imported here, and each Stabiliser subclass
it defines is registered under its ``name``: adding a stabiliser is adding its file. Plug-ins from
outside the package register with :func:`verify.plugins.add_stabiliser`.
"""
import importlib
import inspect
import pkgutil

from verify.stabilisers.base import FineTuningProblem, Stabiliser, StepContext


def _discover() -> dict[str, type[Stabiliser]]:
    found: dict[str, type[Stabiliser]] = {}
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name):
        if module_info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, Stabiliser) and cls.__module__ == module.__name__ and cls.name != "none":
                if cls.name in found:
                    raise ImportError(f"stabilisers: {cls.name!r} is defined twice "
                                      f"({found[cls.name].__module__}, {module.__name__})")
                found[cls.name] = cls
    return found


STABILISERS: dict[str, type[Stabiliser]] = _discover()
globals().update({cls.__name__: cls for cls in STABILISERS.values()})

__all__ = ["STABILISERS", "FineTuningProblem", "Stabiliser", "StepContext",
           *(cls.__name__ for cls in STABILISERS.values())]
