"""The heartbeat thread's retries: backed off against a leader that does not answer (48 hosts
at a flat 0.1 s kept an overloaded lab leaderless), at once when another member leads."""

from __future__ import annotations

import itertools
import threading
import time

from hacluster.agent import HEARTBEAT_RETRY, Agent, retry_in
from hacluster.config import Config, Member
from hacluster.core.state import ClusterState
from hacluster.hypervisor import Hypervisor


class Replica:
    def __init__(self) -> None:
        self.state = ClusterState()
        self.leader = "127.0.0.1:7400"

    def leader_addr(self) -> str | None:
        return self.leader


def agent_beating(replica: Replica) -> tuple[Agent, list[float]]:
    """An agent whose every heartbeat goes unanswered, and when it tried."""
    config = Config(name="h1", members=(Member("h1", "127.0.0.1:1", "127.0.0.1:2"),),
                    secret="s", data_dir="/nonexistent")
    agent = Agent(config, replica, Hypervisor("test:///default"),  # type: ignore[arg-type]
                  threading.Event())
    tries: list[float] = []

    def beat() -> None:
        tries.append(time.monotonic())
        agent.heartbeat_ok = False
    agent.beat = beat  # type: ignore[method-assign]
    return agent, tries


def test_retries_back_off_up_to_the_heartbeat_interval() -> None:
    assert [retry_in(n, 0.5) for n in (1, 2, 3, 4, 9)] == [0.1, 0.2, 0.4, 0.5, 0.5]
    assert retry_in(1, 0.05) == 0.05  # the fast profile's interval is shorter than a retry


def test_an_unanswering_leader_is_asked_less_and_less_often_and_a_new_one_at_once() -> None:
    replica = Replica()
    agent, tries = agent_beating(replica)
    stop = threading.Event()
    thread = threading.Thread(target=agent.heartbeat_loop, args=(stop,), daemon=True)
    thread.start()
    try:
        time.sleep(2.0)
        # 0, 0.1, 0.3, 0.7, 1.2, 1.7 (and not 20 tries at a flat 0.1 s)
        assert 5 <= len(tries) <= 7, tries
        gaps = [b - a for a, b in itertools.pairwise(tries)]
        assert gaps[0] < 2 * HEARTBEAT_RETRY and gaps[-1] > 0.4, gaps
        before = len(tries)
        changed = time.monotonic()
        replica.leader = "127.0.0.2:7400"
        while len(tries) == before:
            assert time.monotonic() - changed < 0.3, "the new leader was not tried at once"
            time.sleep(0.005)
    finally:
        stop.set()
        thread.join(timeout=5)
