"""``make jobs-demo``: the four jobs end to end, no Airflow (``make demo`` runs them in Airflow).

validate the data snapshot → train a challenger → champion/challenger gate → batch scoring with
the champion → summary. Each step is the real job entrypoint run as a process against the local
MLflow store in ``.state/``.
"""

from __future__ import annotations

import argparse
import sys

from attrition_mlops import registry
from attrition_mlops.data.dataset import bundled_dataset_path
from attrition_mlops.runner.entrypoint import new_run_key
from attrition_mlops.runner.local import JobFailedError, run_job
from attrition_mlops.settings import get_settings


def _step(title: str) -> None:
    print(f"\n=== {title} ===", flush=True)


def run_demo(n_trials: int | None = None) -> int:
    settings = get_settings()
    _step("1/4 validate the data snapshot (the latest labelled snapshot; first: bundled IBM HR)")
    snap = run_job("validate_data")
    print(
        f"as_of {snap['snapshot_as_of']}: {snap['rows']} rows, labels {snap['label_counts']}, "
        f"sha256 {snap['sha256'][:12]}…"
    )

    _step("2/4 train a challenger (Optuna over model families, CV on the train part only)")
    args = ["--run-key", new_run_key("demo")]
    if n_trials:
        args += ["--n-trials", str(n_trials)]
    trained = run_job("train", args)
    if trained.get("skipped"):
        print(f"training skipped: {trained['reason']}")
        report = {"decision": "not run", "reason": "training skipped: unchanged snapshot"}
    else:
        print(
            f"registered {trained['model_name']} v{trained['version']} as "
            f"'{registry.CHALLENGER}': {trained['family']}, CV AUC {trained['cv_auc']:.4f}, "
            f"holdout AUC {trained['holdout_auc']:.4f}"
        )
        _step("3/4 champion vs challenger on the frozen holdout")
        report = run_job("evaluate", ["--challenger-version", trained["version"]])

    _step("4/4 batch scoring with the champion (today's partition; a rerun replaces it)")
    scored = run_job("score", ["--input", str(bundled_dataset_path()), "--no-progress"])
    print(
        f"scored {scored['rows_scored']} of {scored['rows_in']} rows with "
        f"v{scored['model_version']} ({scored['rows_rejected']} rejected) into "
        f"{scored['partition']}"
    )

    _step("summary")
    print(_summary(settings, report))
    return 0


def _summary(settings, report: dict) -> str:
    from attrition_mlops.registry.status import alias_status  # what `make status` prints

    held = ", ".join(
        f"{alias} → v{info['version']}" for alias, info in alias_status().items() if info["version"]
    )
    return "\n".join(
        [
            f"{settings.model_name}: {held}",
            f"gate: {report['decision']} ({report['reason']})",
            f"MLflow store: {settings.resolved_tracking_uri}  (browse: make mlflow-ui)",
            "roll back the champion: make rollback",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-trials", type=int, help="training search budget override")
    args = parser.parse_args(argv)
    try:
        return run_demo(args.n_trials)
    except JobFailedError as exc:
        print(f"\ndemo stopped: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
