"""The incident lifecycle (pure), its table (SQLite and PostgreSQL, two writers at once), and what
the drift DAG's ``signal_drift`` does with it over a week of nights."""

from __future__ import annotations

import threading
import uuid
from datetime import date, timedelta
from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import AirflowSkipException

from attrition_mlops import alerts
from attrition_mlops.alerts.incident_store import IncidentStore
from attrition_mlops.alerts.incidents import Incident, Observation, step

DAY = date(2026, 12, 1)


def _obs(status="confirmed", day=0, features=("MonthlyIncome",), data=None, version="3"):
    return Observation(
        model_version=version,
        signal="drift",
        status=status,
        day=DAY + timedelta(days=day),
        features=features,
        labelled_data=data,
    )


def _run(nights: list[Observation], resolve_after: int = 3):
    """Feed nights through ``step`` as the store would; returns each step."""
    current: Incident | None = None
    steps = []
    for obs in nights:
        result = step(current, obs, resolve_after=resolve_after)
        steps.append(result)
        current = result.incident if result.incident and result.incident.is_open else None
    return steps


def test_a_week_of_the_same_drift_pages_once_and_retrains_once():
    steps = _run([_obs(day=d) for d in range(7)])
    assert [s.notice for s in steps] == ["opened"] + ["digest"] * 6
    assert [s.retrain for s in steps] == [True] + [False] * 6
    last = steps[-1].incident
    assert last.nights_confirmed == 7 and last.opened_on == DAY
    assert last.incident_id == steps[0].incident.incident_id
    assert last.incident_id.startswith("drift/v3/2026-12-01/")
    assert "retraining was requested on 2026-12-01" in steps[-1].reason


def test_other_features_change_the_incident_and_request_retraining_again():
    steps = _run([_obs(day=0), _obs(day=1, features=("MonthlyIncome", "OverTime"))])
    assert [(s.notice, s.retrain) for s in steps] == [("opened", True), ("changed", True)]
    assert steps[1].incident.features == ("MonthlyIncome", "OverTime")
    assert steps[1].incident.incident_id == steps[0].incident.incident_id


def test_new_labelled_data_requests_retraining_again_once():
    steps = _run([_obs(day=0, data="a"), _obs(day=1, data="a"), _obs(day=2, data="b")])
    assert [s.retrain for s in steps] == [True, False, True]
    assert steps[2].incident.retraining_requested_on == DAY + timedelta(days=2)
    after = _run([_obs(day=0, data="a"), _obs(day=1, data="b"), _obs(day=2, data="b")])
    assert [s.retrain for s in after] == [True, True, False]


def test_resolves_after_n_clear_nights_in_a_row_and_a_blind_night_counts_for_neither():
    nights = [
        _obs(day=0),
        _obs("clear", day=1),
        _obs("clear", day=2),
        _obs("confirmed", day=3),  # back: the clear streak starts over
        _obs("clear", day=4),
        _obs("unknown", day=5),  # too little data: neither clear nor confirmed
        _obs("clear", day=6),
        _obs("clear", day=7),
    ]
    steps = _run(nights)
    assert [s.notice for s in steps] == [
        "opened",
        None,
        None,
        "digest",
        None,
        None,
        None,
        "resolved",
    ]
    assert steps[4].incident.clear_nights == 1 and steps[6].incident.clear_nights == 2
    resolved = steps[-1].incident
    assert resolved.resolved_on == DAY + timedelta(days=7) and not resolved.is_open
    # The next confirmed night is a new incident, and pages again.
    again = step(None, _obs(day=9), resolve_after=3)
    assert again.notice == "opened" and again.incident.incident_id != resolved.incident_id


@pytest.mark.parametrize("resolve_after", [1, 2, 5])
def test_resolve_after_is_the_number_of_clear_nights(resolve_after):
    nights = [_obs(day=0)] + [_obs("clear", day=d) for d in range(1, resolve_after + 1)]
    steps = _run(nights, resolve_after=resolve_after)
    assert [s.notice for s in steps[1:]] == [None] * (resolve_after - 1) + ["resolved"]


def test_a_night_run_twice_is_counted_once_and_repeats_its_alert():
    first = step(None, _obs(day=0), resolve_after=3)
    again = step(first.incident, _obs(day=0), resolve_after=3)
    # A retry after a crash between the write and the alert still delivers the page ...
    assert (again.notice, again.retrain) == ("opened", True)
    # ... but the night is not counted twice, and nothing new is stored.
    assert again.incident is first.incident and again.incident.nights_confirmed == 1
    second = step(first.incident, _obs(day=1), resolve_after=3)
    assert step(second.incident, _obs(day=1), resolve_after=3).notice == "digest"
    # A backfill of an earlier night changes nothing.
    backfill = step(second.incident, _obs(day=-3), resolve_after=3)
    assert (backfill.notice, backfill.retrain, backfill.incident) == (None, False, second.incident)


def test_quiet_nights_without_an_incident_do_nothing():
    for status in ("clear", "unknown"):
        result = step(None, _obs(status), resolve_after=3)
        assert (result.incident, result.notice, result.retrain) == (None, None, False)


def test_bad_input_is_refused_with_a_clear_error():
    with pytest.raises(ValueError, match="unknown status"):
        _obs("maybe")
    with pytest.raises(ValueError, match="names the model version"):
        _obs(version=" ")
    opened = step(None, _obs(), resolve_after=3).incident
    with pytest.raises(ValueError, match="about v3 drift, the observation about v4"):
        step(opened, _obs(version="4"), resolve_after=3)
    with pytest.raises(ValueError, match="at least 1"):
        step(None, _obs(), resolve_after=0)


def _store_week(store: IncidentStore, days: int) -> list:
    return [store.record(_obs(day=d), resolve_after=3) for d in range(days)]


def test_the_store_keeps_the_incident_between_nights(tmp_path):
    url = f"sqlite:///{tmp_path / 'incidents.db'}"
    steps = _store_week(IncidentStore(url), 3)
    assert [s.notice for s in steps] == ["opened", "digest", "digest"]
    # A new process (a new store on the same file) continues the same incident.
    store = IncidentStore(url)
    incident, revision = store.open_incident("3", "drift")
    assert incident.nights_confirmed == 3 and revision == 3
    assert store.get(incident.incident_id) == incident
    for d in (3, 4, 5):
        store.record(_obs("clear", day=d), resolve_after=3)
    assert store.open_incident("3", "drift") is None
    [closed] = store.all()
    assert closed.resolved_on == DAY + timedelta(days=5) and store.all(open_only=True) == []


def _race(url: str, observations: list[Observation]) -> list:
    """Every observation recorded at once from its own thread (its own store and connection)."""
    stores = [IncidentStore(url) for _ in observations]
    barrier = threading.Barrier(len(observations))
    results: list = [None] * len(observations)

    def run(i: int) -> None:
        barrier.wait()
        results[i] = stores[i].record(observations[i], resolve_after=3)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(observations))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def _check_race(url: str) -> None:
    # Two runs of the same first night at once: one incident, opened once.
    results = _race(url, [_obs(day=0), _obs(day=0)])
    store = IncidentStore(url)
    [incident] = store.all()
    assert incident.nights_confirmed == 1
    assert {r.incident.incident_id for r in results} == {incident.incident_id}
    # Two different nights at once end as one of the two serial orders: night 1 then 2 counts
    # both; night 2 first makes night 1 a backfill, which changes nothing. Never a mix.
    _race(url, [_obs(day=1), _obs(day=2)])
    incident, revision = store.open_incident("3", "drift")
    assert incident.last_observed_on == DAY + timedelta(days=2)
    assert (incident.nights_confirmed, revision) in {(3, 3), (2, 2)}


def test_two_writers_at_once_open_one_incident_and_lose_no_night_sqlite(tmp_path):
    _check_race(f"sqlite:///{tmp_path / 'incidents.db'}")


@pytest.mark.integration
def test_two_writers_at_once_open_one_incident_and_lose_no_night_postgres():
    import sqlalchemy as sa

    admin = sa.create_engine(
        "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT"
    )
    name = f"incidents_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    url = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    try:
        _check_race(url)
    finally:
        sa.create_engine(url).dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE {name} WITH (FORCE)"))


def _drift_summary(day: date, features=("MonthlyIncome",), status="drift") -> dict:
    drifted = [{"feature": f, "psi": 0.4, "p_adjusted": 1e-9} for f in features]
    return {
        "status": status,
        "drift_confirmed": status == "drift",
        "n_records": 2400,
        "window": [day.isoformat(), day.isoformat()],
        "versions": {
            "3": {
                "status": status,
                "drift_confirmed": status == "drift",
                "drifted": drifted if status == "drift" else [],
            }
        },
    }


def test_signal_drift_over_a_week_of_persistent_drift_pages_once(state_dir, monkeypatch):
    """What ``signal_drift`` does night after night, with the real alert log and incident table."""
    from attrition_mlops.orchestration import events

    for name in ("ATTRITION_ALERT_WEBHOOK_URL", "ATTRITION_ALERT_INCIDENT_DB_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ATTRITION_ALERT_INCIDENT_DB_URL", "")  # empty: the default, not an error
    alerts.get_alert_settings.cache_clear()
    scheduled = []
    for d in range(7):
        event = SimpleNamespace(extra=None)
        try:
            events.record_drift(_drift_summary(DAY + timedelta(days=d)), event, {})
        except AirflowSkipException as skip:
            assert "retraining not requested again" in str(skip)
        scheduled.append(event.extra is not None)
    for d in range(7, 10):  # three clear nights resolve it
        with pytest.raises(AirflowSkipException, match="no drift confirmed"):
            events.record_drift(
                _drift_summary(DAY + timedelta(days=d), status="no_drift"),
                SimpleNamespace(extra=None),
                {},
            )
    log = alerts.read_alert_log(alerts.get_alert_settings().resolved_log_path)
    sent = [entry for entry in log if "event" in entry]
    assert [a["event"] for a in sent] == ["drift_confirmed"] + ["incident_digest"] * 6 + [
        "incident_resolved"
    ]
    assert [a["severity"] for a in sent].count("warning") == 1  # one page in the week
    assert len({a["dedup_key"] for a in sent}) == 1  # all under the incident's id
    assert scheduled == [True] + [False] * 6  # retraining scheduled once
    assert (state_dir / "alerts" / "incidents.db").is_file()
    alerts.get_alert_settings.cache_clear()


class _Interrupted(IncidentStore):
    """A store whose first read is followed, before its write, by another run's write."""

    def __init__(self, url: str, other: Observation) -> None:
        super().__init__(url)
        self.other, self.reads = other, 0

    def open_incident(self, model_version, signal):
        found = super().open_incident(model_version, signal)
        self.reads += 1
        if self.reads == 1:
            IncidentStore(str(self.engine.url)).record(self.other, resolve_after=3)
        return found


def test_a_write_between_read_and_write_is_not_lost(tmp_path):
    url = f"sqlite:///{tmp_path / 'incidents.db'}"
    IncidentStore(url).record(_obs(day=0), resolve_after=3)
    # Night 2 is counted by another run while this run is between reading and writing night 1.
    store = _Interrupted(url, other=_obs(day=2))
    result = store.record(_obs(day=1), resolve_after=3)
    assert store.reads == 2  # the compare-and-set failed once, and the run read again
    incident, _ = store.open_incident("3", "drift")
    # Night 1 arrived after night 2 had been counted: a backfill, so it changes nothing, and
    # night 2's count is not overwritten by a stale copy.
    assert result.notice is None and incident.nights_confirmed == 2
    assert incident.last_observed_on == DAY + timedelta(days=2)
    # Opening: another run opens the incident first; this one counts its night in it.
    url2 = f"sqlite:///{tmp_path / 'incidents2.db'}"
    racer = _Interrupted(url2, other=_obs(day=0))
    assert racer.record(_obs(day=0), resolve_after=3).notice == "opened"  # the night's replay
    [only] = IncidentStore(url2).all()
    assert only.nights_confirmed == 1


def test_a_summary_without_a_window_is_refused_not_dated_today():
    from attrition_mlops.orchestration.incidents import drift_observations

    summary = _drift_summary(DAY)
    del summary["window"]
    with pytest.raises(ValueError, match="names no window"):
        drift_observations(summary)
    assert drift_observations({"status": "no_drift", "versions": {}}) == []
    [obs] = drift_observations(_drift_summary(DAY), labelled_data="sha")
    assert (obs.day, obs.status, obs.features, obs.labelled_data) == (
        DAY,
        "confirmed",
        ("MonthlyIncome",),
        "sha",
    )


def test_the_newest_labelled_snapshot_names_the_labelled_data(state_dir):
    from attrition_mlops.data.snapshots import ensure_bundled_snapshot
    from attrition_mlops.orchestration.incidents import latest_labelled_data
    from attrition_mlops.settings import get_settings

    assert latest_labelled_data() is None  # no snapshot stored yet
    ensure_bundled_snapshot(get_settings().snapshot_dir)
    first = latest_labelled_data()
    assert first is not None and len(first) == 64
