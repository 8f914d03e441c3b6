"""The Job controller on a simulated cluster: completions and parallelism, the backoff limit
(failed pods, or restarts with OnFailure), work queues, suspend, the labels and selector made
from the Job's uid, kubectl's columns, and the spec checks."""
from __future__ import annotations

import pytest

from emulator.api.tables import PRINTERS
from emulator.cluster import controllers, render
from emulator.cluster.dataplane import network_view
from emulator.cluster.store import ContainerStatus
from emulator.errors import SpecError
from emulator.spec.loader import load_text
from emulator.spec.manifests import parse_documents
from tests.unit.test_controllers import default_state

JOB = """
apiVersion: batch/v1
kind: Job
metadata: {name: pi}
spec:
  %(spec)s
  template:
    spec:
      restartPolicy: %(policy)s
      containers: [{name: pi, image: busybox, command: [sh, -c, "echo 3.14"]}]
"""


def job(spec: str = "", policy: str = "Never") -> list:
    return parse_documents(load_text(JOB % {"spec": spec, "policy": policy}, "job.yaml")).objects


def pods(st) -> list:
    return sorted((r for r in st.pods("default") if r.obj.owner == ("Job", "pi")), key=lambda r: r.created)


def active(st) -> list:
    return [r for r in pods(st) if not r.deleting and r.status.phase not in ("Succeeded", "Failed")]


def finish(st, rec, code: int = 0) -> None:
    """As the kubelet reports a pod whose container exited with ``code`` (restartPolicy Never)."""
    rec.status.phase = "Succeeded" if code == 0 else "Failed"
    rec.status.containers = {"pi": ContainerStatus("pi", "terminated", "", exit_code=code)}
    controllers.reconcile(st)


def job_status(st) -> dict:
    return render.objects(st, "Job", "default")[0]["status"]


def test_a_job_runs_its_completions_at_most_parallelism_at_a_time_then_is_complete():
    st = default_state()
    controllers.apply(st, job("completions: 3\n  parallelism: 2"))
    assert len(active(st)) == 2
    finish(st, active(st)[0])
    assert len(active(st)) == 2  # one more started: 1 done, 2 running
    finish(st, active(st)[0])
    assert len(active(st)) == 1  # only one completion is left
    finish(st, active(st)[0])
    status = job_status(st)
    assert status["succeeded"] == 3 and status.get("active", 0) == 0
    assert [c["type"] for c in status["conditions"]] == ["SuccessCriteriaMet", "Complete"]
    assert status["conditions"][1]["reason"] == "CompletionsReached" and "completionTime" in status
    obj = render.objects(st, "Job", "default")[0]
    row = PRINTERS["Job"][2](obj, False)
    assert row[:3] == ["pi", "Complete", "3/3"]


def test_pods_carry_the_jobs_uid_and_name_as_the_api_server_generates_them():
    st = default_state()
    controllers.apply(st, job())
    uid = st.get("Job", "default", "pi").uid
    labels = active(st)[0].obj.meta.labels
    assert labels["batch.kubernetes.io/controller-uid"] == labels["controller-uid"] == uid
    assert labels["batch.kubernetes.io/job-name"] == labels["job-name"] == "pi"
    obj = render.objects(st, "Job", "default")[0]
    assert obj["spec"]["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    assert obj["spec"]["template"]["metadata"]["labels"]["job-name"] == "pi"
    assert (obj["spec"]["completions"], obj["spec"]["parallelism"], obj["spec"]["backoffLimit"]) == (1, 1, 6)
    pod = next(p for p in render.objects(st, "Pod", "default") if p["metadata"]["name"] == active(st)[0].obj.meta.name)
    assert pod["metadata"]["ownerReferences"][0]["apiVersion"] == "batch/v1"
    again = parse_documents(load_text(__import__("yaml").safe_dump(obj), "back.yaml")).objects[0]
    assert controllers.apply(st, [again]) == ["job.batch/pi unchanged"]  # a client's write-back


def test_more_failures_than_the_backoff_limit_fail_the_job():
    st = default_state()
    controllers.apply(st, job("backoffLimit: 1"))
    finish(st, active(st)[0], 1)
    assert len(active(st)) == 1  # replaced: one failure is within the limit
    finish(st, active(st)[0], 1)
    status = job_status(st)
    assert status["failed"] == 2 and not active(st)
    assert [c["type"] for c in status["conditions"]] == ["FailureTarget", "Failed"]
    assert status["conditions"][1]["reason"] == "BackoffLimitExceeded"
    assert PRINTERS["Job"][2](render.objects(st, "Job", "default")[0], False)[1] == "Failed"
    assert any(e.reason == "BackoffLimitExceeded" for e in st.events.about("Job", "default", "pi"))


def test_with_on_failure_container_restarts_count_against_the_backoff_limit():
    st = default_state()
    controllers.apply(st, job("backoffLimit: 2", policy="OnFailure"))
    rec = active(st)[0]
    rec.status.phase = "Running"
    rec.status.containers = {"pi": ContainerStatus("pi", "running", "", restart_count=1)}
    controllers.reconcile(st)
    assert not job_status(st).get("conditions")
    rec.status.containers["pi"].restart_count = 2
    controllers.reconcile(st)
    assert job_status(st)["conditions"][-1]["type"] == "Failed" and rec.deleting


def test_a_work_queue_job_ends_when_one_pod_succeeded_and_none_is_active():
    st = default_state()
    controllers.apply(st, job("parallelism: 3"))
    assert len(active(st)) == 3
    finish(st, active(st)[0])
    assert len(active(st)) == 2 and not job_status(st).get("conditions")  # no new pod, the others finish
    finish(st, active(st)[0])
    finish(st, active(st)[0])
    assert job_status(st)["conditions"][-1]["type"] == "Complete"
    assert PRINTERS["Job"][2](render.objects(st, "Job", "default")[0], False)[2] == "3/1 of 3"


def test_a_suspended_job_runs_nothing_until_resumed():
    st = default_state()
    controllers.apply(st, job("suspend: true"))
    assert not pods(st)
    status = job_status(st)
    assert status["conditions"][0]["type"] == "Suspended" and "startTime" not in status
    assert PRINTERS["Job"][2](render.objects(st, "Job", "default")[0], False)[1] == "Suspended"
    controllers.apply(st, job("suspend: false"))
    assert len(active(st)) == 1 and not job_status(st).get("conditions")


def test_deleting_a_job_deletes_its_pods_and_its_template_cannot_change():
    st = default_state()
    controllers.apply(st, job())
    with pytest.raises(SpecError, match="spec.template: field is immutable"):
        controllers.apply(st, job(policy="OnFailure"))
    controllers.delete(st, "Job", "default", "pi")
    assert all(r.deleting for r in pods(st))


@pytest.mark.parametrize("text, field, message", [
    (JOB % {"spec": "", "policy": "Always"}, "spec.template.spec.restartPolicy",
     'Unsupported value: "Always": supported values: "OnFailure", "Never"'),
    (JOB.replace("      restartPolicy: %(policy)s\n", "") % {"spec": ""}, "spec.template.spec.restartPolicy",
     'Required value: valid values: "OnFailure", "Never"'),
    (JOB % {"spec": "completionMode: Indexed", "policy": "Never"}, "spec.completions",
     "Required value: when completion mode is Indexed"),
    (JOB % {"spec": "completionMode: Indexed\n  completions: 100001", "policy": "Never"}, "spec.completions",
     "at most 100000"),
    (JOB % {"spec": "activeDeadlineSeconds: 0", "policy": "Never"}, "spec.activeDeadlineSeconds", "at least 1"),
    (JOB % {"spec": "ttlSecondsAfterFinished: -1", "policy": "Never"}, "spec.ttlSecondsAfterFinished", "at least 0"),
    (JOB % {"spec": "selector: {matchLabels: {app: x}}", "policy": "Never"}, "spec.selector", "manualSelector"),
    (JOB % {"spec": "backoffLimit: -1", "policy": "Never"}, "spec.backoffLimit", "at least 0"),
])
def test_job_specs_refused_as_the_api_server_refuses_them(text, field, message):
    with pytest.raises(SpecError) as err:
        parse_documents(load_text(text, "job.yaml"))
    assert any(p.field == field and message in p.message for p in err.value.problems), err.value.problems


def test_a_pod_that_ran_to_completion_gives_its_address_back_once():
    """The kubelet ends a finished pod's sandbox: its address leaves the data plane and its node's
    pool (a Job of many completions does not fill the node); deleting the pod later does not
    release it again, when another pod may hold it."""
    st = default_state()
    controllers.apply(st, job())
    rec = active(st)[0]
    ip, node = rec.status.ip, rec.status.node
    finish(st, rec)
    controllers.release_address(st, rec)
    assert ip not in {p.ip for p in network_view(st).pods} and ip not in st.ipam[node].allocated
    assert rec.status.ip == ip  # its status still names it
    st.ipam[node].allocated[ip] = "default/another"  # handed out again
    controllers.delete(st, "Pod", "default", rec.obj.meta.name)
    controllers.forget_pod(st, rec)
    assert st.ipam[node].allocated[ip] == "default/another"


def test_an_indexed_job_runs_each_index_once_with_its_hostname_annotation_and_variable():
    """completionMode Indexed: pods ``pi-<index>-<random>``, the index as annotation and label,
    hostname ``pi-<index>``, JOB_COMPLETION_INDEX from the annotation; a failed index is run
    again; Complete once every index succeeded; completedIndexes as ranges."""
    from emulator.model import podfiles
    st = default_state()
    controllers.apply(st, job("completionMode: Indexed\n  completions: 4\n  parallelism: 2"))
    first = active(st)
    assert sorted(r.obj.meta.annotations["batch.kubernetes.io/job-completion-index"] for r in first) == ["0", "1"]
    zero = next(r for r in first if r.obj.meta.labels["batch.kubernetes.io/job-completion-index"] == "0")
    assert zero.obj.meta.name.startswith("pi-0-") and zero.obj.spec.hostname == "pi-0"
    env = podfiles.container_env(zero.obj, zero.obj.spec.containers[0], "10.0.0.5", "n1", "172.18.0.2", "/c")
    assert env["JOB_COMPLETION_INDEX"] == "0"
    assert zero.obj.spec.raw["containers"][0]["env"][-1]["name"] == "JOB_COMPLETION_INDEX"
    finish(st, zero)
    one = next(r for r in active(st) if r.obj.spec.hostname == "pi-1")
    finish(st, one, code=1)  # index 1 failed: run again, beside index 2
    assert sorted(r.obj.spec.hostname for r in active(st)) == ["pi-1", "pi-2"]
    assert job_status(st)["completedIndexes"] == "0"
    for r in active(st):
        finish(st, r)
    assert sorted(r.obj.spec.hostname for r in active(st)) == ["pi-3"]
    finish(st, active(st)[0])
    status = job_status(st)
    assert status["completedIndexes"] == "0-3" and status["conditions"][-1]["type"] == "Complete"
    assert render.objects(st, "Job", "default")[0]["spec"]["completionMode"] == "Indexed"


def test_a_job_past_its_active_deadline_fails_and_its_pods_go():
    st = default_state()
    controllers.apply(st, job("activeDeadlineSeconds: 5"))
    assert len(active(st)) == 1
    from emulator.cluster import jobs
    track = next(iter(st.jobs.values()))
    assert track.wake == track.start + 5 and not jobs.due(st, track.start + 4) and jobs.due(st, track.start + 5)
    track.start -= 10  # as if it had been active ten seconds
    controllers.reconcile(st)
    status = job_status(st)
    assert status["conditions"][-1]["type"] == "Failed" and status["conditions"][-1]["reason"] == "DeadlineExceeded"
    assert not active(st) and all(r.deleting for r in pods(st))


def test_a_finished_job_with_a_ttl_is_deleted_with_its_pods_when_it_expires():
    st = default_state()
    controllers.apply(st, job("ttlSecondsAfterFinished: 30"))
    finish(st, active(st)[0])
    assert st.get("Job", "default", "pi") is not None  # finished, not expired yet
    track = next(iter(st.jobs.values()))
    assert track.wake == track.completion + 30
    track.completion -= 31
    track.wake -= 31
    controllers.reconcile(st)
    assert st.get("Job", "default", "pi") is None and all(r.deleting for r in pods(st))
