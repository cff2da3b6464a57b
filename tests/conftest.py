import os

import matplotlib
from hypothesis import HealthCheck, settings

matplotlib.use("Agg")

# CI: derandomised and bounded, so a run is repeatable; dev: the default random exploration.
settings.register_profile("ci", derandomize=True, max_examples=25, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=25, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
