"""The CronJob controller at chosen times: Jobs at the schedule's times, the latest missed one
only, the starting deadline, the concurrency policies, history limits, suspend, time zones,
cascading deletion, kubectl's columns, and the spec checks."""
from __future__ import annotations

from dataclasses import replace

import pytest

from emulator.api.tables import PRINTERS
from emulator.cluster import controllers, cronjobs, jobs, render
from emulator.cluster.store import ContainerStatus
from emulator.errors import SpecError
from emulator.spec.loader import load_text
from emulator.spec.manifests import parse_documents
from tests.unit.test_controllers import default_state

BASE = 1_800_000_000.0  # a whole hour (UTC), well after the clock the apply itself ran at
CRON = """
apiVersion: batch/v1
kind: CronJob
metadata: {name: tick}
spec:
  schedule: "%(schedule)s"
  suspend: true
  %(extra)s
  jobTemplate:
    metadata: {labels: {app: tick}}
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{name: date, image: busybox, command: [date]}]
"""


def objects(schedule: str = "*/5 * * * *", extra: str = "") -> list:
    return parse_documents(load_text(CRON % {"schedule": schedule, "extra": extra}, "cron.yaml")).objects


def started(schedule: str = "*/5 * * * *", extra: str = ""):
    """A CronJob created at BASE (applied suspended, so the apply's own pass at the real clock
    makes nothing, then resumed without a controller pass)."""
    st = default_state()
    controllers.apply(st, objects(schedule, extra))
    rec = st.get("CronJob", "default", "tick")
    rec.created = BASE
    st.put("CronJob", replace(rec.obj, suspend=False))
    return st


def tick(st, now: float) -> None:
    cronjobs.reconcile(st, controllers.by_owner(st), now)
    jobs.reconcile(st, controllers.by_owner(st))


def made(st) -> list[str]:
    return sorted(r.obj.meta.name for r in st.list("Job", "default") if r.obj.owner == ("CronJob", "tick"))


def complete(st, name: str) -> None:
    for pod in st.pods("default"):
        if pod.obj.owner == ("Job", name):
            pod.status.phase = "Succeeded"
            pod.status.containers = {"date": ContainerStatus("date", "terminated", "", exit_code=0)}
    jobs.reconcile(st, controllers.by_owner(st))


def test_a_job_at_each_scheduled_time_named_by_its_minute():
    st = started()
    tick(st, BASE + 299)
    assert made(st) == []
    tick(st, BASE + 300)
    name = f"tick-{int((BASE + 300) // 60)}"
    assert made(st) == [name]
    job = st.get("Job", "default", name)
    assert job.obj.meta.labels == {"app": "tick"}
    assert job.obj.meta.annotations[cronjobs.SCHEDULED] == "2027-01-15T08:05:00Z"
    assert [p.obj.owner for p in st.pods("default") if p.obj.owner == ("Job", name)] == [("Job", name)]
    obj = render.objects(st, "CronJob", "default")[0]
    assert [a["name"] for a in obj["status"]["active"]] == [name]
    assert obj["status"]["lastScheduleTime"] == "2027-01-15T08:05:00Z"
    job_obj = next(j for j in render.objects(st, "Job", "default") if j["metadata"]["name"] == name)
    ref = job_obj["metadata"]["ownerReferences"][0]
    assert (ref["apiVersion"], ref["kind"], ref["uid"]) == ("batch/v1", "CronJob", st.get("CronJob", "default", "tick").uid)
    row = PRINTERS["CronJob"][2](obj, False)
    assert row[:5] == ["tick", "*/5 * * * *", "<none>", "False", "1"]


def test_only_the_latest_missed_time_runs_and_a_past_deadline_is_skipped():
    st = started()
    tick(st, BASE + 3600 + 10)
    assert made(st) == [f"tick-{int((BASE + 3600) // 60)}"]
    late = started(extra="startingDeadlineSeconds: 10")
    tick(late, BASE + 320)
    assert made(late) == []
    assert any(e.reason == "MissSchedule" for e in late.events.about("CronJob", "default", "tick"))


def test_forbid_waits_for_the_active_job_and_replace_replaces_it():
    st = started(extra="concurrencyPolicy: Forbid")
    tick(st, BASE + 300)
    first = made(st)[0]
    tick(st, BASE + 600)
    assert made(st) == [first]  # still running: the 08:10 run waits
    complete(st, first)
    tick(st, BASE + 610)
    assert made(st) == sorted([first, f"tick-{int((BASE + 600) // 60)}"])  # run once it ended
    rep = started(extra="concurrencyPolicy: Replace")
    tick(rep, BASE + 300)
    tick(rep, BASE + 600)
    assert made(rep) == [f"tick-{int((BASE + 600) // 60)}"]
    assert any(e.reason == "SuccessfulDelete" for e in rep.events.about("CronJob", "default", "tick"))


def test_finished_jobs_beyond_the_history_limit_go_oldest_first():
    st = started(extra="successfulJobsHistoryLimit: 1")
    for minute in (5, 10):
        tick(st, BASE + minute * 60)
        complete(st, f"tick-{int((BASE + minute * 60) // 60)}")
    tick(st, BASE + 11 * 60)
    assert made(st) == [f"tick-{int((BASE + 600) // 60)}"]
    assert "lastSuccessfulTime" in render.objects(st, "CronJob", "default")[0]["status"]


def test_suspended_it_runs_nothing_and_deleting_it_deletes_its_jobs_and_pods():
    st = started()
    st.put("CronJob", replace(st.get("CronJob", "default", "tick").obj, suspend=True))
    tick(st, BASE + 900)
    assert made(st) == []
    st.put("CronJob", replace(st.get("CronJob", "default", "tick").obj, suspend=False))
    tick(st, BASE + 900)
    name = made(st)[0]
    controllers.delete(st, "CronJob", "default", "tick")
    assert st.get("Job", "default", name) is None
    assert all(p.deleting for p in st.pods("default") if p.obj.owner == ("Job", name))


def test_a_time_zone_moves_the_schedule():
    st = started("0 9 * * *", "timeZone: Europe/Paris")  # 09:00 in Paris is 08:00 UTC in January
    tick(st, BASE + 3600 + 10)  # 09:00 UTC: not yet (it would be, in UTC)
    assert made(st) == []
    tick(st, BASE + 86400 + 10)  # the next day, 08:00 UTC
    assert made(st) == [f"tick-{int((BASE + 86400) // 60)}"]


@pytest.mark.parametrize("schedule, extra, field, message", [
    ("61 * * * *", "", "spec.schedule", "unparseable schedule"),
    ("TZ=UTC 0 * * * *", "", "spec.schedule", "use timeZone field instead"),
    ("* * * * * *", "", "spec.schedule", "five fields"),
    ("@every 5m", "", "spec.schedule", "descriptor"),
    ("0 * * * *", "timeZone: Mars/Olympus", "spec.timeZone", "unknown time zone"),
    ("0 * * * *", "concurrencyPolicy: Sometimes", "spec.concurrencyPolicy", 'Unsupported value: "Sometimes"'),
])
def test_cronjob_specs_refused_as_the_api_server_refuses_them(schedule, extra, field, message):
    with pytest.raises(SpecError) as err:
        objects(schedule, extra)
    assert any(p.field == field and message in p.message for p in err.value.problems), err.value.problems


def test_descriptors_read_as_their_fields():
    assert objects("@hourly")[0].schedule == "0 * * * *"


def test_allow_runs_beside_active_jobs_and_more_than_100_missed_times_run_the_latest_only():
    st = started()
    tick(st, BASE + 300)
    tick(st, BASE + 600)
    assert len(made(st)) == 2  # the first still runs: Allow starts the next beside it
    late = started()
    tick(late, BASE + 200 * 300 + 5)
    assert made(late) == [f"tick-{int((BASE + 200 * 300) // 60)}"]
    assert any(e.reason == "TooManyMissedTimes" for e in late.events.about("CronJob", "default", "tick"))


def test_the_job_templates_metadata_may_name_it_as_kubectl_create_cronjob_does():
    text = (CRON % {"schedule": "0 * * * *", "extra": ""}).replace("metadata: {labels: {app: tick}}",
                                                                    "metadata: {name: tick, labels: {app: tick}}")
    assert parse_documents(load_text(text, "cron.yaml")).objects[0].job_labels == {"app": "tick"}
