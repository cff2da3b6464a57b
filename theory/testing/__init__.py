"""Property checks for anyone's stability bound: hypothesis strategies drawing certified instances
(``theory.testing.strategies``) and a battery any object with the Bound protocol can be run against
(``check_bound``; on the command line ``ftstab check-bound MODULE:OBJECT``)."""
from theory.testing.battery import BatteryReport, PropertyResult, check_bound, monotone_claims

__all__ = ["BatteryReport", "PropertyResult", "check_bound", "monotone_claims"]
