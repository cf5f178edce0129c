"""Scenario files for the simulator, in the manner of Proxmox ha-manager's tests: a cluster,
timed events, and the outcome expected, judged by the hypervisors. The known hard cases live
in tests/sim/scenarios/*.toml, beside the random schedules; each reads on its own:

    profile = "safe"            # or "fast"
    hosts = 3                   # h1..h3
    fence_agents = ["h2"]       # hosts whose fence agent the leader may run
    until = 12.0                # simulated seconds
    vms = [{ name = "web", memory_mib = 512, ha = true }]
    events = [[3.0, "power_off", "host of web"]]   # time, fault, host | "leader" | "host of VM"
    [expect]
    running_once = ["web"]      # each runs on exactly one host at the end
    running_none = []           # each runs nowhere
    away_from_struck = ["web"]  # none runs on a host an event struck
    struck_fenced_by = "lease+watchdog"   # every struck host fenced so (or "none": not fenced)

Faults: power_off, power_on, pause, resume, isolate, heal, daemon_crash, daemon_start,
vm_crash, maintenance (toggles), heal_all. The invariants of the random schedules (no VM on two
hosts, no overcommit, leases only from a majority, no start without one, no loop error) are
checked after every step here too.

    python -m tests.sim.scenario tests/sim/scenarios/power_loss.toml --verbose
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path
from typing import Any

from hacluster.core.model import HostStatus, Observed

from .simulator import InvariantBroken, Setup, Sim

SCENARIOS = Path(__file__).parent / "scenarios"


class Scenario:
    def __init__(self, path: Path) -> None:
        data: dict[str, Any] = tomllib.loads(path.read_text())
        self.name = path.stem
        self.setup = Setup(data["profile"], int(data["hosts"]),
                           frozenset(data.get("fence_agents", ())),
                           tuple(dict(vm) for vm in data["vms"]),
                           cpu_load=tuple(float(x) for x in data.get("cpu_load", ())),
                           lags=tuple((str(h), float(s)) for h, s in data.get("lags", {}).items()))
        self.events = [(float(t), str(kind), str(target)) for t, kind, target in data["events"]]
        self.until = float(data["until"])
        self.expect: dict[str, Any] = data.get("expect", {})

    def run(self, verbose: bool = False) -> Sim:
        sim = Sim(0, verbose, self.setup)
        try:
            sim.play(self.events, self.until)
            self.judge(sim)
        except (InvariantBroken, AssertionError) as exc:
            tail = "\n".join(sim.trace[-30:])
            raise InvariantBroken(f"scenario {self.name}: {exc}\nreplay: python -m "
                                  f"tests.sim.scenario {SCENARIOS / self.name}.toml --verbose"
                                  f"\nlast events:\n{tail}") from None
        return sim

    def judge(self, sim: Sim) -> None:
        where: dict[str, list[str]] = {}
        for h in sim.hosts.values():
            for d in h.domains.values() if h.powered else ():
                if d.state is Observed.RUNNING:
                    where.setdefault(d.name, []).append(h.name)
        e = self.expect
        for vm in e.get("running_once", ()):
            assert len(where.get(vm, [])) == 1, f"{vm} runs on {where.get(vm, [])}, not once"
        for vm in e.get("running_none", ()):
            assert not where.get(vm), f"{vm} runs on {where[vm]}"
        for vm in e.get("away_from_struck", ()):
            assert not set(where.get(vm, [])) & sim.struck, \
                f"{vm} runs on {where.get(vm)}, struck: {sorted(sim.struck)}"
        by = e.get("struck_fenced_by")
        for host in sorted(sim.struck) if by else ():
            record = sim.state.hosts[host]
            if by == "none":
                assert record.status is not HostStatus.FENCED, f"{host} was fenced"
            else:
                assert record.status is HostStatus.FENCED or any(
                    i.host == host and i.fenced_by == by for i in sim.state.incidents), \
                    f"{host} is {record.status.value}, not fenced by {by}"


def main() -> int:
    ap = argparse.ArgumentParser(description="run one scenario file of the simulator")
    ap.add_argument("path", type=Path)
    ap.add_argument("--verbose", "-v", action="store_true")
    args = ap.parse_args()
    try:
        Scenario(args.path).run(args.verbose)
    except InvariantBroken as exc:
        print(exc)
        return 1
    print(f"{args.path.stem}: as expected")
    return 0


if __name__ == "__main__":
    sys.exit(main())
