"""Every constant a registered bound uses is documented in its class's numpydoc ``Parameters`` with
its symbol, and that symbol is the one docs/theory.md writes (LaTeX, or an assumption's name)."""
from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from theory.bounds import BOUNDS

THEORY = (Path(__file__).resolve().parents[2] / "docs" / "theory.md").read_text()
ENTRY = re.compile(r"^    (\w+) : float\n        (?::math:`(?P<symbol>[^`]+)`|``(?P<assumption>\w+)``), ",
                   re.M)


def documented(bound) -> dict[str, str]:
    """``constant -> symbol`` from the ``Parameters`` section of the bound's class docstring."""
    doc = type(bound).__doc__ or ""
    assert "\n    Parameters\n    ----------\n" in doc, type(bound).__name__
    section = doc.split("\n    Parameters\n    ----------\n", 1)[1]
    return {match[1]: match["symbol"] or match["assumption"] for match in ENTRY.finditer(section)}


@pytest.mark.parametrize("name", BOUNDS)
def test_every_constant_is_named_with_a_symbol_of_the_theory(name):
    bound = BOUNDS[name]
    symbols = documented(bound)
    assert list(symbols) == list(bound.constants)
    missing = {constant: symbol for constant, symbol in symbols.items() if symbol not in THEORY}
    assert not missing, missing


def test_the_parser_reads_symbols_and_assumptions():
    class Example:
        r"""An example.

        Parameters
        ----------
        mu : float
            :math:`\mu'`, a symbol.
        full_batch : float
            ``full_batch``, an assumption.
        """
    Example.__doc__ = inspect.cleandoc(Example.__doc__).replace("\n", "\n    ")
    assert documented(Example()) == {"mu": r"\mu'", "full_batch": "full_batch"}
    assert "\\mu'" in THEORY and "`full_batch`" in THEORY and "\\nonsense_symbol" not in THEORY
