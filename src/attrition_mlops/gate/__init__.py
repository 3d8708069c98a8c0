"""The champion/challenger gate: bootstrap, decision rules, evaluation, report."""
