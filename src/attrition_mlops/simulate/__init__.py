"""The traffic and drift simulator. Everything it returns is SIMULATED, never real employee data.

The generators are pure (data in, data out); ``write_export_logs``, ``send_traffic`` and the
command line (``python -m attrition_mlops.simulate``, docs/simulator.md) deliver their output.
Records are real rows resampled with replacement, optionally changed by
a named drift scenario, with small symmetric noise on the four pay/rate fields, then made valid
under the feature contract (whole numbers, contract bounds, consistent tenure fields). Every
returned frame is labelled: ``frame.attrs["is_simulated"] is True`` and ``frame.attrs
["simulation"]`` records scenario, seed, intensity and noise; ``EmployeeNumber`` holds fresh IDs
above the real data's maximum (2068), so a simulated record never collides with a real employee.

A quiet night (scenario ``none``) is the real data's distribution: resampling draws from the
empirical distribution itself, and the noise has mean zero and touches only near-continuous fields
(see docs/drift.md, where the calibration study relies on this).

The modules: :mod:`~attrition_mlops.simulate.generate` (scenarios and the pure generators),
:mod:`~attrition_mlops.simulate.export` (inference-log lines and export files),
:mod:`~attrition_mlops.simulate.send` (HTTP to the API), :mod:`~attrition_mlops.simulate.cli`
(the command line). Everything public is importable from ``attrition_mlops.simulate``.
"""

from attrition_mlops.simulate.cli import main
from attrition_mlops.simulate.export import simulated_log_lines, write_export_logs
from attrition_mlops.simulate.generate import (
    DEFAULT_NOISE,
    NOISY_FEATURES,
    REAL_MAX_EMPLOYEE_NUMBER,
    SCENARIOS,
    SIMULATED,
    Scenario,
    ScenarioFn,
    simulate_labelled_snapshot,
    simulate_traffic,
)
from attrition_mlops.simulate.send import TrafficError, describe_sent, send_traffic

__all__ = [
    "DEFAULT_NOISE",
    "NOISY_FEATURES",
    "REAL_MAX_EMPLOYEE_NUMBER",
    "SCENARIOS",
    "SIMULATED",
    "Scenario",
    "ScenarioFn",
    "TrafficError",
    "describe_sent",
    "main",
    "send_traffic",
    "simulate_labelled_snapshot",
    "simulate_traffic",
    "simulated_log_lines",
    "write_export_logs",
]
