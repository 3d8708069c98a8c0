"""Roll a model version out to an environment, wait for it, roll it back; no Airflow in here.

The deployment DAG calls this module and never branches on the target; :func:`get_backend` does.

* ``local``: an environment (``staging``, ``production``) is a local serving process that follows
  the registry alias of the same name. Rolling out moves that alias (compare-and-set and audited,
  through :mod:`attrition_mlops.registry`) and makes sure the server runs; the server hot-swaps
  to the new version at its next poll, and :meth:`LocalBackend.wait` watches it do so.
* ``azure``: an environment is the ``attrition-serving`` Deployment in its namespace, patched
  through the Kubernetes API (:mod:`attrition_mlops.deploy.rollout.kubernetes`).

``roll_out`` returns what was deployed before; ``roll_back`` restores exactly that. A rollout that
is already in place returns the "before" recorded when it was made (the registry's
``previous-<env>`` alias, the Deployment's annotations), so a retried task still knows where to go
back to.

The modules: :mod:`~attrition_mlops.deploy.rollout.common` (environments, errors, settings,
the backend protocol), :mod:`~attrition_mlops.deploy.rollout.local` (the local backend),
:mod:`~attrition_mlops.deploy.rollout.driver` (the steps the DAG calls); the Kubernetes backend is
:mod:`attrition_mlops.deploy.rollout.kubernetes`. Everything public is importable from
``attrition_mlops.deploy.rollout``.
"""

from attrition_mlops.deploy.rollout.common import (
    ENVIRONMENTS,
    PRODUCTION_EXPORT,
    ROLLBACK_REASON,
    ROLLOUT_REASON,
    Deployed,
    DeploySettings,
    Environment,
    LocalServingSettings,
    RolloutBackend,
    RolloutError,
    RolloutFailed,
    RolloutTimeout,
    check_environment,
    describe,
    version_str,
)
from attrition_mlops.deploy.rollout.driver import (
    deploy_environment,
    environment_url,
    get_backend,
    record_deployment,
    smoke_test_environment,
)
from attrition_mlops.deploy.rollout.local import LOCAL_WAIT_POLL_S, SERVER_APP, LocalBackend

__all__ = [
    "ENVIRONMENTS",
    "LOCAL_WAIT_POLL_S",
    "PRODUCTION_EXPORT",
    "ROLLBACK_REASON",
    "ROLLOUT_REASON",
    "SERVER_APP",
    "Deployed",
    "DeploySettings",
    "Environment",
    "LocalBackend",
    "LocalServingSettings",
    "RolloutBackend",
    "RolloutError",
    "RolloutFailed",
    "RolloutTimeout",
    "check_environment",
    "deploy_environment",
    "describe",
    "environment_url",
    "get_backend",
    "record_deployment",
    "smoke_test_environment",
    "version_str",
]
