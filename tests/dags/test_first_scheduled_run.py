"""A new DAG's first scheduled run is its next cron time: the first start has just built the warehouse, and a
run for the cron time just past would only queue the newcomer's first trigger behind it (issue 20)."""

from __future__ import annotations

from datetime import timedelta

import pendulum
import pytest
from airflow.timetables import trigger
from airflow.timetables.base import TimeRestriction

from include.vyapar.pipeline.dag_factory import build_all_dags


@pytest.fixture(scope="module")
def scheduled_dags():
    dags = {dag_id: dag for dag_id, dag in build_all_dags().items() if dag.timetable.can_be_scheduled}
    assert len(dags) == 15  # every DAG but the manual warehouse restore
    return dags


def _first_run_after(dag, now, monkeypatch):
    """The scheduler's answer for a DAG without runs (DagModel.next_dagrun at its creation), at `now`."""
    monkeypatch.setattr(trigger, "utcnow", lambda: now)
    restriction = TimeRestriction(earliest=dag.start_date, latest=dag.end_date, catchup=dag.catchup)
    return dag.timetable.next_dagrun_info(last_automated_data_interval=None, restriction=restriction).run_after


def test_every_dags_first_scheduled_run_is_in_the_future(scheduled_dags, monkeypatch):
    now = pendulum.now("UTC")
    for dag_id, dag in scheduled_dags.items():
        assert dag.catchup is False and dag.start_date is None, dag_id
        assert _first_run_after(dag, now, monkeypatch) > now, dag_id


def test_a_cron_time_a_minute_past_is_not_run_on_creation(scheduled_dags, monkeypatch):
    """Airflow's `run_immediately=False` still runs a cron time up to 5 minutes (10% of the gap) past: ours not."""
    for dag_id, dag in scheduled_dags.items():
        cron_time = _first_run_after(dag, pendulum.now("UTC"), monkeypatch)
        a_minute_later = cron_time + timedelta(minutes=1)
        assert _first_run_after(dag, a_minute_later, monkeypatch) > a_minute_later, dag_id
