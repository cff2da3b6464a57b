import os

import matplotlib
from hypothesis import HealthCheck, settings

matplotlib.use("Agg")

# CI: derandomised and bounded, so a run is repeatable; dev: the default random exploration.
# Neither keeps an example database (.hypothesis/): a failing example found once would otherwise be
# replayed first in that checkout for ever, so a fixed or flaky test kept failing from a stale
# example. A failure prints its @reproduce_failure blob to replay it by hand instead.
settings.register_profile("ci", derandomize=True, max_examples=25, deadline=None, print_blob=True,
                          database=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=25, deadline=None, print_blob=True, database=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
