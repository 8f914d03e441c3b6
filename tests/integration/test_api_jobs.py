"""Jobs through kubectl on a live cluster: ``kubectl create job`` runs to completion (wait, logs,
the table's columns), a parallel Job runs its completions two at a time, and a failing one stops
at its backoff limit."""
from __future__ import annotations

import json
import os
import time

import pytest

from tests.cluster import kubectl, module_cluster, poll

pytestmark = pytest.mark.requires_root
cluster = module_cluster("topologies/default.yaml")

PARALLEL = """apiVersion: batch/v1
kind: Job
metadata: {name: batch}
spec:
  completions: 4
  parallelism: 2
  template:
    spec:
      restartPolicy: Never
      containers: [{name: work, image: busybox, command: [sh, -c, "echo done"]}]
"""
FAILING = """apiVersion: batch/v1
kind: Job
metadata: {name: broken}
spec:
  backoffLimit: 1
  template:
    spec:
      restartPolicy: Never
      containers: [{name: work, image: busybox, command: [sh, -c, "exit 3"]}]
"""


def job(name: str) -> dict:
    return json.loads(kubectl("get", "job", name, "-o", "json").stdout)


def pods(name: str) -> list[dict]:
    return json.loads(kubectl("get", "pods", "-l", f"job-name={name}", "-o", "json").stdout)["items"]


def test_kubectl_create_job_runs_to_completion(cluster):
    kubectl("create", "job", "hello", "--image=busybox", "--", "sh", "-c", "echo hello from $(hostname)")
    kubectl("wait", "--for=condition=complete", "job/hello", "--timeout=60s")
    (pod,) = pods("hello")
    name = pod["metadata"]["name"]
    assert pod["status"]["phase"] == "Succeeded"
    assert kubectl("logs", "job/hello").stdout.strip() == f"hello from {name}"
    assert kubectl("logs", "-f", "job/hello", timeout=20).stdout.strip() == f"hello from {name}"  # ends: it ran
    # the kubelet ended the finished pod's sandbox: no network namespace left, nothing to exec into
    poll(lambda: not [n for n in os.listdir("/run/netns") if n.endswith(f"_default_{name}")], timeout=10,
         what="the finished pod's network namespace to go")
    assert cluster.client.pod(name)["finished"] == "Succeeded"
    status = cluster.client.status()  # what `up` waits on: a completed pod is not one to wait for
    assert status["completed"] == 1 and status["running"] == status["pods"]
    assert "completed pod" in kubectl("exec", name, "--", "true", check=False).stderr
    row = kubectl("get", "job", "hello", "--no-headers").stdout.split()
    assert row[:3] == ["hello", "Complete", "1/1"]
    status = job("hello")["status"]
    assert status["succeeded"] == 1 and status["conditions"][-1]["type"] == "Complete"
    kubectl("delete", "job", "hello")
    poll(lambda: not pods("hello"), timeout=30, what="the Job's pod to go with it")


def test_a_parallel_job_runs_its_completions_two_at_a_time(cluster):
    kubectl("apply", "-f", "-", input=PARALLEL)
    kubectl("wait", "--for=condition=complete", "job/batch", "--timeout=90s")
    done = pods("batch")
    assert len(done) == 4 and all(p["status"]["phase"] == "Succeeded" for p in done)
    assert all(kubectl("logs", p["metadata"]["name"]).stdout.strip() == "done" for p in done)
    created = [e for e in json.loads(kubectl("get", "events", "--field-selector",
                                             "involvedObject.kind=Job,involvedObject.name=batch,reason=SuccessfulCreate",
                                             "-o", "json").stdout)["items"]]
    assert len(created) == 4
    assert kubectl("get", "job", "batch", "--no-headers").stdout.split()[:3] == ["batch", "Complete", "4/4"]


def test_a_failing_job_stops_at_its_backoff_limit(cluster):
    kubectl("apply", "-f", "-", input=FAILING)
    kubectl("wait", "--for=condition=failed", "job/broken", "--timeout=60s")
    status = job("broken")["status"]
    assert status["failed"] == 2 and status["conditions"][-1]["reason"] == "BackoffLimitExceeded"
    assert sorted(p["status"]["phase"] for p in pods("broken")) == ["Failed", "Failed"]
    assert kubectl("get", "job", "broken", "--no-headers").stdout.split()[:3] == ["broken", "Failed", "0/1"]


CRON = """apiVersion: batch/v1
kind: CronJob
metadata: {name: tick}
spec:
  schedule: "* * * * *"
  successfulJobsHistoryLimit: 1
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{name: date, image: busybox, command: [sh, -c, "echo tick"]}]
"""


@pytest.mark.slow  # waits for the next minute: make slow
def test_a_cronjob_runs_its_job_at_the_next_minute_and_kubectl_can_start_one_by_hand(cluster):
    kubectl("apply", "-f", "-", input=CRON)
    kubectl("create", "job", "by-hand", "--from=cronjob/tick")  # the course's way to try a CronJob now
    kubectl("wait", "--for=condition=complete", "job/by-hand", "--timeout=60s")
    assert kubectl("logs", "job/by-hand").stdout.strip() == "tick"

    def scheduled() -> list[dict]:
        return [j for j in json.loads(kubectl("get", "jobs", "-o", "json").stdout)["items"]
                if (j["metadata"].get("ownerReferences") or [{}])[0].get("kind") == "CronJob"]
    first = poll(scheduled, timeout=75, interval=1, what="the CronJob's first Job (at the next minute)")[0]
    name = first["metadata"]["name"]
    assert name.startswith("tick-") and int(name.split("-")[1]) * 60 >= time.time() - 120
    kubectl("wait", "--for=condition=complete", f"job/{name}", "--timeout=60s")
    row = kubectl("get", "cronjob", "tick", "--no-headers").stdout.split()
    assert row[:5] == ["tick", "*", "*", "*", "*"] and row[7] == "False" and row[9] != "<none>"
    kubectl("delete", "cronjob", "tick")
    poll(lambda: not scheduled(), timeout=30, what="its Jobs to go with it")
    kubectl("create", "cronjob", "made", "--image=busybox", "--schedule=*/5 * * * *", "--", "date")
    assert kubectl("get", "cj", "made", "--no-headers").stdout.split()[:6] == ["made", "*/5", "*", "*", "*", "*"]


INDEXED = """apiVersion: batch/v1
kind: Job
metadata: {name: indexed}
spec:
  completionMode: Indexed
  completions: 3
  parallelism: 3
  template:
    spec:
      restartPolicy: Never
      containers: [{name: work, image: busybox, command: [sh, -c, "echo index=$JOB_COMPLETION_INDEX host=$(hostname)"]}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: deadline}
spec:
  activeDeadlineSeconds: 2
  template:
    spec:
      restartPolicy: Never
      containers: [{name: work, image: busybox, command: [sleep, "60"]}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: short-lived}
spec:
  ttlSecondsAfterFinished: 1
  template:
    spec:
      restartPolicy: Never
      containers: [{name: work, image: busybox, command: ["true"]}]
"""


def test_an_indexed_job_and_a_deadline_and_a_ttl_through_kubectl(cluster, tmp_path):
    (tmp_path / "jobs.yaml").write_text(INDEXED)
    kubectl("apply", "-f", str(tmp_path / "jobs.yaml"))
    kubectl("wait", "--for=condition=complete", "job/indexed", "--timeout=60s")
    assert job("indexed")["status"]["completedIndexes"] == "0-2"
    logs = sorted(kubectl("logs", p["metadata"]["name"]).stdout.strip() for p in pods("indexed"))
    assert logs == [f"index={i} host=indexed-{i}" for i in range(3)]
    kubectl("wait", "--for=condition=failed", "job/deadline", "--timeout=60s")
    assert job("deadline")["status"]["conditions"][-1]["reason"] == "DeadlineExceeded"
    poll(lambda: not [p for p in pods("deadline") if p["status"]["phase"] == "Running"], timeout=30,
         what="the deadline Job's pod to be stopped")
    poll(lambda: "NotFound" in kubectl("get", "job", "short-lived", check=False).stderr, timeout=30,
         what="the finished Job to be deleted after its ttlSecondsAfterFinished")
    poll(lambda: not pods("short-lived"), timeout=30, what="its pod to go with it")
    kubectl("delete", "job", "indexed", "deadline")
