"""VM placement rules: checked when created, so that a contradiction is refused with a
reason instead of leaving VMs that can never be placed."""

from __future__ import annotations

from collections.abc import Mapping

from .model import Host, Rule, RuleKind, Strength, Vm
from .validate import MAX_RULE_MEMBERS, name_error


def rule_errors(rule: Rule, rules: Mapping[str, Rule], vms: Mapping[str, Vm],
                hosts: Mapping[str, Host]) -> list[str]:
    """Everything wrong with a new rule, alone or against the existing must rules."""
    if len(rule.vms) > MAX_RULE_MEMBERS or len(rule.hosts) > MAX_RULE_MEMBERS:
        return [f"a rule names at most {MAX_RULE_MEMBERS} VMs and {MAX_RULE_MEMBERS} hosts"]
    if not all(isinstance(n, str) for n in [*rule.vms, *rule.hosts]):
        return ["VM and host names must be strings"]
    errors = [e for e in [name_error("rule", rule.name)] if e]
    if rule.name in rules:
        errors.append(f"rule {rule.name} already exists")
    least = 1 if rule.kind is RuleKind.HOST else 2
    if len(set(rule.vms)) < least or len(set(rule.vms)) != len(rule.vms):
        errors.append(f"a {rule.kind.value} rule needs at least {least} distinct VM(s)")
    errors += [f"VM {v} does not exist" for v in rule.vms if v not in vms]
    if rule.kind is RuleKind.HOST:
        if not rule.hosts:
            errors.append("a host rule needs at least one host")
        errors += [f"host {h} does not exist" for h in rule.hosts if h not in hosts]
    elif rule.hosts:
        errors.append(f"a {rule.kind.value} rule names VMs only, not hosts")
    if errors or rule.strength is Strength.SHOULD:
        return errors
    musts = [r for r in rules.values() if r.strength is Strength.MUST] + [rule]
    if rule.kind is RuleKind.ANTI_AFFINITY and len(rule.vms) > len(hosts):
        errors.append(f"{len(rule.vms)} VMs kept apart need {len(rule.vms)} hosts; the "
                      f"cluster has {len(hosts)}")
    together = _together(musts)
    for r in musts:
        if r.kind is RuleKind.ANTI_AFFINITY:
            for a in r.vms:
                for b in r.vms:
                    if a < b and together.get(a) is not None and together.get(a) == \
                            together.get(b):
                        errors.append(f"{a} and {b} must be together (affinity) and apart "
                                      f"(anti-affinity rule {r.name})")
    allowed: dict[str, set[str]] = {}  # a VM, or its affinity group, -> hosts still allowed
    for r in musts:
        if r.kind is RuleKind.HOST:
            for v in r.vms:
                group = f"#{together[v]}" if v in together else v
                allowed[group] = allowed.get(group, set(r.hosts)) & set(r.hosts)
                if not allowed[group]:
                    errors.append(f"no host is allowed for {v} by every must rule that "
                                  f"binds it (rule {r.name})")
    return sorted(set(errors))


def _together(rules: list[Rule]) -> dict[str, int]:
    """Groups of VMs that must share a host (affinity is transitive): VM -> group id."""
    group: dict[str, int] = {}
    for i, r in enumerate(rules):
        if r.kind is not RuleKind.AFFINITY:
            continue
        ids = {group[v] for v in r.vms if v in group} | {i}
        target = min(ids)
        for v, g in list(group.items()):
            if g in ids:
                group[v] = target
        for v in r.vms:
            group[v] = target
    return group
