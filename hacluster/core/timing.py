"""HA timings: the two profiles and the inequalities that keep failover safe (the lease
protocol they feed is core.lease). Pure arithmetic on seconds.

The profiles' numbers feed core.lease's arithmetic; `problems` refuses a configuration under
which that arithmetic would not hold.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class HaTimings:
    heartbeat: float  # agent -> leader; each grants a lease
    lease: float
    watchdog: float  # how long after lease expiry a hung host is powered off
    margin: float  # clock-rate drift, scheduling delays, the watchdog's own reaction
    host_down_after: float  # silence before a host is shown down (display; not a fence)
    confirm_every: float = 0.25  # the leader re-proves its majority this often

    @property
    def grant_window(self) -> float:
        """How long after its last proof of a majority a leader may still grant leases."""
        return 2 * self.confirm_every

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


PROFILES = {
    # every HA VM of a lost host runs again within ~4 s (+ its boot); tolerates a Raft leader
    # change (up to ~1.5 s) without a single lease running out
    "safe": HaTimings(heartbeat=0.5, lease=2.5, watchdog=1.0, margin=0.5, host_down_after=1.0,
                      confirm_every=0.25),
    # within ~1.6 s; a leader change under heavy load may cost a host its lease (its HA VMs are
    # stopped and restarted elsewhere): choose it for fast, uncontended management networks
    "fast": HaTimings(heartbeat=0.1, lease=1.0, watchdog=0.3, margin=0.2, host_down_after=0.3,
                      confirm_every=0.1),
}

# The Raft timings each profile needs so that a leader change fits inside a lease.
RAFT_FOR_PROFILE = {
    "safe": {"election_min": 0.3, "election_max": 0.6, "leader_fallback": 1.5},
    "fast": {"election_min": 0.15, "election_max": 0.3, "leader_fallback": 0.6,
             "append_entries_period": 0.03},
}


def problems(t: HaTimings, election_max: float, leader_fallback: float,
             watchdog_granularity: float = 0.0) -> list[str]:
    """Every broken inequality, said plainly; haclusterd refuses to start if there is one."""
    out = []
    if min(t.heartbeat, t.lease, t.margin, t.host_down_after) <= 0 or t.watchdog < 0:
        out.append("heartbeat, lease, margin and host_down_after must be > 0, watchdog >= 0")
        return out
    if t.lease < 2 * t.heartbeat + election_max:
        out.append(f"lease ({t.lease:g}s) must be at least 2 x heartbeat + election_max "
                   f"({2 * t.heartbeat + election_max:g}s), or every Raft leader change makes "
                   "hosts drop their HA VMs")
    if t.margin < 0.1 + 0.01 * (t.lease + t.watchdog):
        out.append(f"margin ({t.margin:g}s) must be at least 0.1s + 1% of lease + watchdog "
                   "(clock-rate drift and scheduling delay)")
    if watchdog_granularity and t.watchdog and t.watchdog < watchdog_granularity:
        out.append(f"watchdog ({t.watchdog:g}s) is finer than the device allows "
                   f"({watchdog_granularity:g}s)")
    if leader_fallback < election_max:
        out.append(f"raft leader_fallback ({leader_fallback:g}s) must be >= election_max "
                   f"({election_max:g}s)")
    if not 0 < t.confirm_every <= t.heartbeat:
        out.append("confirm_every must be > 0 and at most one heartbeat (grants need a recent "
                   "proof of a majority)")
    if t.host_down_after < t.heartbeat:
        out.append("host_down_after must be at least one heartbeat")
    return out
