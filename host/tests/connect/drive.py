"""Drives sluice's Kafka Connect face with a real Connect REST client (kafka-connect-py):
create, status, pause, resume, stop, offsets (KIP-875, with requests: the client has no
offsets calls), restart and delete of the turnstile pipeline, each answer checked against
Connect's shapes. Prints `create_to_running_ms=N` and ends with `connect drive ok`.

usage: drive.py CONNECT_URL SPEC_FILE TOPIC PARTITIONS RECORDS
"""

import json
import sys
import time

import requests
from kafka_connect.kafka_connect import KafkaConnect

CLASS = "io.sluice.connect.Pipeline"
NAME = "turnstile"


def wait(what, check, seconds=120):
    """Polls `check` until it returns a true value; fails after `seconds`."""
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except requests.HTTPError as error:
            last = error
        time.sleep(0.1)
    sys.exit(f"timed out waiting for {what}; last answer: {last}")


def expect(condition, message):
    if not condition:
        sys.exit(f"check failed: {message}")


def main():
    url, spec_file, topic, partitions, records = sys.argv[1:6]
    partitions, records = int(partitions), int(records)
    spec = open(spec_file).read()
    kc = KafkaConnect(url=url)

    info = kc.get_cluster_info()
    expect({"version", "commit", "kafka_cluster_id"} <= info.keys(), f"GET / {info}")
    plugins = kc.list_connector_plugins()
    expect(any(p["class"] == CLASS for p in plugins), f"plugins {plugins}")
    expect(kc.list_connectors() == [], "no connector yet")

    started = time.monotonic()
    created = kc.create_connector(
        {"name": NAME, "config": {"connector.class": CLASS, "sluice.spec": spec, "topics": topic}}
    )
    expect(created["name"] == NAME and created["type"] == "sink", f"create {created}")
    # `topics` replaced the spec's placeholder topic: the stored spec says so.
    expect(created["config"]["topics"] == topic, f"topics {created['config']}")
    expect(f"topic: {topic}" in created["config"]["sluice.spec"], created["config"]["sluice.spec"])
    status = wait("RUNNING", lambda: (s := kc.get_connector_status(NAME))["connector"]["state"] == "RUNNING" and s)
    print(f"create_to_running_ms={(time.monotonic() - started) * 1000:.0f}", flush=True)
    expect(status["tasks"] and all(t["state"] == "RUNNING" for t in status["tasks"]), f"tasks {status}")
    try:
        kc.create_connector({"name": NAME, "config": {"sluice.spec": spec}})
        sys.exit("a second create of the same name was accepted")
    except requests.HTTPError as error:
        body = error.response.json()
        expect(error.response.status_code == 409 and body["error_code"] == 409, f"409 {body}")
    try:
        kc.get_connector("nope")
        sys.exit("an unknown connector was found")
    except requests.HTTPError as error:
        expect(error.response.json() == {"error_code": 404, "message": "Connector nope not found"}, error.response.text)

    expanded = kc.list_connectors(expand="status")
    expect(expanded[NAME]["status"]["connector"]["state"] == "RUNNING", f"expand {expanded}")
    expect(kc.list_connector_topics(NAME) == {NAME: {"topics": [topic]}}, "topics")
    tasks = kc.list_connector_tasks(NAME)
    expect(tasks and tasks[0]["id"] == {"connector": NAME, "task": 0}, f"tasks {tasks}")
    expect(kc.get_connector_task_status(NAME, 0)["state"] == "RUNNING", "task 0 runs")

    # Every record read: the group's committed offsets reach the end of each partition.
    offsets_url = f"{url}/connectors/{NAME}/offsets"
    def committed():
        body = requests.get(offsets_url, timeout=10).json()
        total = sum(o["offset"]["kafka_offset"] for o in body["offsets"])
        return total == records and body
    read = wait("every record read", committed, seconds=180)
    expect(len(read["offsets"]) == partitions, f"offsets {read}")
    expect(all(o["partition"]["kafka_topic"] == topic for o in read["offsets"]), f"offsets {read}")

    bad = requests.patch(offsets_url, json=read, timeout=10)
    expect(bad.status_code == 400 and "STOPPED" in bad.json()["message"], f"PATCH while running: {bad.text}")

    kc.pause_connector(NAME)
    wait("PAUSED", lambda: kc.get_connector_status(NAME)["connector"]["state"] == "PAUSED")
    kc.resume_connector(NAME)
    wait("RUNNING after resume", lambda: kc.get_connector_status(NAME)["connector"]["state"] == "RUNNING")

    kc.stop_connector(NAME)
    stopped = wait("STOPPED", lambda: (s := kc.get_connector_status(NAME))["connector"]["state"] == "STOPPED" and s)
    expect(stopped["tasks"] == [], f"a stopped connector has no tasks: {stopped}")
    # Back to offset 0 of partition 0 only, then the whole reset.
    altered = {"offsets": [{"partition": {"kafka_topic": topic, "kafka_partition": 0}, "offset": {"kafka_offset": 0}}]}
    answer = requests.patch(offsets_url, json=altered, timeout=10)
    expect(answer.status_code == 200 and "altered" in answer.json()["message"], f"PATCH: {answer.text}")
    after = requests.get(offsets_url, timeout=10).json()["offsets"]
    expect({"partition": {"kafka_topic": topic, "kafka_partition": 0}, "offset": {"kafka_offset": 0}} in after
           or all(o["partition"]["kafka_partition"] != 0 for o in after), f"after PATCH: {after}")
    answer = requests.delete(offsets_url, timeout=10)
    expect(answer.status_code == 200 and "reset" in answer.json()["message"], f"DELETE: {answer.text}")
    reset = requests.get(offsets_url, timeout=10).json()["offsets"]
    expect(all(o["offset"]["kafka_offset"] == 0 for o in reset), f"after DELETE: {reset}")
    kc.resume_connector(NAME)
    wait("RUNNING after the reset", lambda: kc.get_connector_status(NAME)["connector"]["state"] == "RUNNING")
    wait("every record read again", committed, seconds=180)

    restarted = kc.restart_connector(NAME, include_tasks=True, only_failed=False)
    expect(restarted["connector"]["state"] == "RESTARTING", f"restart {restarted}")
    expect(all(t["state"] == "RESTARTING" for t in restarted["tasks"]), f"restart {restarted}")
    wait("RUNNING after restart", lambda: kc.get_connector_status(NAME)["connector"]["state"] == "RUNNING")
    nothing = kc.restart_connector(NAME, include_tasks=True, only_failed=True)
    expect(nothing["connector"]["state"] == "RUNNING", f"onlyFailed restarts nothing: {nothing}")

    config = kc.get_connector_config(NAME)
    config["tasks.max"] = "2"
    updated = kc.update_connector(NAME, config)
    expect(updated["config"]["tasks.max"] == "2", f"update {updated}")
    wait("RUNNING after the update", lambda: kc.get_connector_status(NAME)["connector"]["state"] == "RUNNING")

    kc.delete_connector(NAME)
    expect(kc.list_connectors() == [], "deleted")
    print("connect drive ok", flush=True)


if __name__ == "__main__":
    main()
