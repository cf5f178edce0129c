"""The leader loop's pacing between passes (LeaderLoop._run, rest_after): it rests as long
as a pass worked, never for the time the pass spent waiting on a commit."""

from __future__ import annotations

import threading
import time

from hacluster.leader import REST_MAX, rest_after


def test_a_pass_that_waited_for_its_commit_is_followed_at_once() -> None:
    # a 48-host lab: the fence waited 0.7 s to commit and the placement came 0.25 s later
    assert rest_after(cpu=0.004, waited=0.0) == 0.004
    assert rest_after(cpu=0.9, waited=0.0) == REST_MAX  # a costly pass: bounded
    assert rest_after(cpu=0.03, waited=0.05) < 0  # already waited longer: none


def test_thread_time_counts_work_and_not_waiting() -> None:
    """What _run feeds rest_after: the leader thread's CPU, which a blocked wait (a commit,
    the next due event) does not add to."""
    took: list[float] = []

    def waiting_pass() -> None:
        cpu = time.thread_time()
        threading.Event().wait(0.3)  # as propose() waits for its commit
        took.append(time.thread_time() - cpu)

    worker = threading.Thread(target=waiting_pass)
    worker.start()
    worker.join()
    assert took[0] < 0.05, took
