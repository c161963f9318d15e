"""One run per namespace: the run Lease (harness.kubernetes.lease) against the kmock emulator."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from kubernetes import client as k8s_client

from harness.kubernetes import lease
from harness.kubernetes.target import CORDONED_LABEL, KubernetesTarget
from tests.kubernetes.conftest import NAMESPACE, Clusters, target_spec


def read(api: k8s_client.ApiClient) -> dict[str, Any]:
    answer = k8s_client.CoordinationV1Api(api).read_namespaced_lease(
        lease.LEASE_NAME, NAMESPACE, _preload_content=False
    )
    return json.loads(answer.data)


def later(seconds: float) -> Any:
    """A clock this far ahead of the machine's: a run looking at the Lease that much later."""
    return lambda: time.time() + seconds


class TestHeld:
    def test_the_first_run_creates_the_lease_naming_itself(self, clusters: Clusters) -> None:
        """A free namespace: the Lease is created with the run as holder, 60 s, and who the run is."""
        with clusters.allowed.api() as api:
            first = lease.Lease(api, NAMESPACE, "run-a")
            first.acquire()
            obj = read(api)
            assert obj["spec"]["holderIdentity"] == "run-a" and obj["spec"]["leaseDurationSeconds"] == 60
            holder = json.loads(obj["metadata"]["annotations"][lease.HOLDER_ANNOTATION])
            assert holder == first.body and holder["pid"] > 0 and holder["host"]
            assert first.record()["took_over_from"] is None and first.record()["kind"] == "lease"

    def test_a_second_run_is_refused_naming_the_first(self, clusters: Clusters) -> None:
        """While the Lease is held and fresh, another run fails at once (exit 3) with run id, pid, start."""
        with clusters.allowed.api() as api:
            first = lease.Lease(api, NAMESPACE, "run-a")
            first.acquire()
            second = lease.Lease(api, NAMESPACE, "run-b", clock=later(59))
            with pytest.raises(lease.LeaseHeldError) as info:
                second.acquire()
            message = str(info.value)
            assert info.value.exit_code == 2
            assert f"namespace {NAMESPACE} is in use by run run-a (pid {first.body['pid']}" in message
            assert "started 20" in message and "--wait" in message
            assert read(api)["spec"]["holderIdentity"] == "run-a"

    def test_waiting_takes_the_lease_once_it_is_released(self, clusters: Clusters) -> None:
        """--wait: the holder releases after about a second; the waiter takes it then."""
        with clusters.allowed.api() as api:
            first = lease.Lease(api, NAMESPACE, "run-a")
            first.acquire()
            told: list[dict[str, Any]] = []
            timer = threading.Timer(1.0, first.release)
            timer.start()
            second = lease.Lease(api, NAMESPACE, "run-b")
            try:
                second.acquire(wait_s=30, on_wait=told.append)
            finally:
                timer.cancel()
            assert 0.5 < second.waited_s < 10 and second.previous is None
            assert [h["run_id"] for h in told] == ["run-a"]
            assert read(api)["spec"]["holderIdentity"] == "run-b"

    def test_waiting_gives_up_after_the_wait(self, clusters: Clusters) -> None:
        """A holder that keeps it: the waiter gives up after its wait, naming the holder."""
        with clusters.allowed.api() as api:
            lease.Lease(api, NAMESPACE, "run-a").acquire()
            slept: list[float] = []
            ticks = iter(range(100))
            second = lease.Lease(api, NAMESPACE, "run-b")
            with pytest.raises(lease.LeaseHeldError, match=r"run run-a .* after waiting 5 s"):
                second.acquire(wait_s=5, sleep=slept.append, monotonic=lambda: float(next(ticks)))
            assert slept and all(s <= lease.POLL_S for s in slept)


class TestReleasedAndRenewed:
    def test_release_clears_the_holder_and_the_next_run_takes_it_without_healing(
        self, clusters: Clusters
    ) -> None:
        """A released Lease names nobody; the next run takes it and has no dead run to heal."""
        with clusters.allowed.api() as api:
            first = lease.Lease(api, NAMESPACE, "run-a")
            first.acquire()
            first.release()
            assert not read(api)["spec"].get("holderIdentity")
            second = lease.Lease(api, NAMESPACE, "run-b")
            second.acquire()
            assert second.previous is None and read(api)["spec"]["leaseTransitions"] == 1

    def test_renewal_moves_renew_time_and_the_thread_keeps_it_fresh(self, clusters: Clusters) -> None:
        """renew() writes a later renewTime, keeping acquireTime; the renewing thread renews on its own."""
        with clusters.allowed.api() as api:
            held = lease.Lease(api, NAMESPACE, "run-a")
            held.acquire()
            before = read(api)["spec"]
            time.sleep(0.01)
            assert held.renew() and held.renewals == 1
            after = read(api)["spec"]
            assert after["renewTime"] > before["renewTime"] and after["acquireTime"] == before["acquireTime"]
            held.start_renewing(every_s=0.1)
            deadline = time.monotonic() + 5
            while held.renewals < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
            held.release()
            assert held.renewals >= 3 and held.lost is None

    def test_a_holder_whose_lease_was_taken_over_knows_it_lost_it(self, clusters: Clusters) -> None:
        """After a stall past the duration another run took over: the old holder's renewal says so."""
        with clusters.allowed.api() as api:
            stalled = lease.Lease(api, NAMESPACE, "run-a")
            stalled.acquire()
            lease.Lease(api, NAMESPACE, "run-b", clock=later(61)).acquire()
            assert stalled.renew() is False
            assert stalled.lost is not None and "run run-b" in stalled.lost
            stalled.release()  # gives up nothing it no longer holds
            assert read(api)["spec"]["holderIdentity"] == "run-b"


class TestExpired:
    def test_an_expired_lease_is_taken_over_and_its_dead_holder_named(self, clusters: Clusters) -> None:
        """A holder that stopped renewing more than 60 s ago: the Lease goes to the new run, which
        records whom it took over from."""
        with clusters.allowed.api() as api:
            dead = lease.Lease(api, NAMESPACE, "run-a")
            dead.acquire()  # and never renews nor releases: killed
            taker = lease.Lease(api, NAMESPACE, "run-b", clock=later(61))
            taker.acquire()
            assert taker.previous == dead.body
            spec = read(api)["spec"]
            assert spec["holderIdentity"] == "run-b" and spec["leaseTransitions"] == 1
            assert taker.record()["took_over_from"]["run_id"] == "run-a"

    def test_two_runs_taking_over_at_once_one_wins_the_other_sees_it(
        self, clusters: Clusters, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Both read the expired Lease; the first write wins; the second gets 409 Conflict, reads
        again and reports the winner, instead of both believing they hold it."""
        with clusters.allowed.api() as api:
            lease.Lease(api, NAMESPACE, "run-a").acquire()
            slow = lease.Lease(api, NAMESPACE, "run-c", clock=later(61))
            stale = slow._read()  # run-c reads the expired Lease ...
            lease.Lease(api, NAMESPACE, "run-b", clock=later(61)).acquire()  # ... run-b takes it meanwhile
            reads = iter([stale])
            real = slow._read
            monkeypatch.setattr(slow, "_read", lambda: next(reads, None) or real())
            holder = slow.try_acquire()
            assert holder is not None and holder["run_id"] == "run-b"
            assert clusters.allowed.emulator is not None
            assert clusters.allowed.emulator.conflicts == [lease.LEASE_NAME]
            assert read(api)["spec"]["holderIdentity"] == "run-b"

    def test_two_runs_creating_at_once_one_wins(
        self, clusters: Clusters, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Both see no Lease; the second create gets 409 AlreadyExists, and it reads the winner."""
        with clusters.allowed.api() as api:
            slow = lease.Lease(api, NAMESPACE, "run-c")
            reads = iter([None])
            real = slow._read
            lease.Lease(api, NAMESPACE, "run-b").acquire()
            monkeypatch.setattr(slow, "_read", lambda: real() if next(reads, "again") == "again" else None)
            holder = slow.try_acquire()
            assert holder is not None and holder["run_id"] == "run-b"


class TestTarget:
    def test_a_run_holds_the_lease_from_open_to_close_and_records_it(self, clusters: Clusters) -> None:
        """The target with lock=True takes the Lease in open(), a second run's target is refused, the
        facts carry target.lock, and close() gives it up."""
        first = KubernetesTarget(target_spec(), url="http://127.0.0.1:9", run_id="run-a", lock=True)
        second = KubernetesTarget(target_spec(), url="http://127.0.0.1:9", run_id="run-b", lock=True)
        first.open()
        try:
            with pytest.raises(lease.LeaseHeldError, match="in use by run run-a"):
                second.open()
            assert second.connection is None, "a refused target closes its connection"
            record = first.facts()["lock"]
            assert record["name"] == f"{NAMESPACE}/{lease.LEASE_NAME}" and record["run_id"] == "run-a"
            assert record["duration_s"] == 60 and record["renew_s"] == 15 and record["healed"] == []
        finally:
            first.close()
        with clusters.allowed.api() as api:
            assert not read(api)["spec"].get("holderIdentity")
        second.open()
        second.close()

    def test_taking_over_from_a_dead_run_heals_what_it_left_marked(self, clusters: Clusters) -> None:
        """A run died with a node cordoned by a harness activity and its Lease expired: the next run
        uncordons the node before it starts, and says whose Lease it took."""
        with clusters.allowed.api() as api:
            core = k8s_client.CoreV1Api(api)
            node = core.list_node().items[0].metadata.name
            core.patch_node(
                node, {"metadata": {"labels": {CORDONED_LABEL: "true"}}, "spec": {"unschedulable": True}}
            )
            lease.Lease(api, NAMESPACE, "run-dead", clock=later(-120)).acquire()
        said: list[str] = []
        target = KubernetesTarget(
            target_spec(), url="http://127.0.0.1:9", run_id="run-b", lock=True, say=said.append
        )
        target.open()
        try:
            record = target.facts()["lock"]
        finally:
            target.close()
        assert record["took_over_from"]["run_id"] == "run-dead"
        assert any(f"uncordoned node {node}" in line for line in record["healed"]), record["healed"]
        assert any("run run-dead" in line and "healed first" in line for line in said)
        with clusters.allowed.api() as api:
            assert not k8s_client.CoreV1Api(api).read_node(node).spec.unschedulable

    def test_cleanup_without_a_run_id_takes_no_lease(self, clusters: Clusters) -> None:
        """The target as `harness cleanup --plan` opens it (no run id) heals without waiting for a Lease."""
        with clusters.allowed.api() as api:
            lease.Lease(api, NAMESPACE, "run-a").acquire()
        target = KubernetesTarget(target_spec(), url="http://127.0.0.1:9")
        target.open()
        target.close()
