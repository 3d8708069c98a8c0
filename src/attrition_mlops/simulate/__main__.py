"""``python -m attrition_mlops.simulate``: see :mod:`attrition_mlops.simulate.cli`."""

from attrition_mlops.simulate.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
