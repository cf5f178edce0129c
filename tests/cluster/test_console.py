"""The web console in a real browser (Debian's chromium, driven by Playwright; nothing is
downloaded) against a real lab, judged by each host's libvirt: log in, create a VM and see it
run without reloading, migrate it from its page, watch a lost host's incident timeline fill
in live, and check that the host page's what-if said where its VMs would go. Screenshots of
every page are kept in test-output/console/ (HACLUSTER_TEST_OUTPUT to move it)."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from .conftest import LabRun, wait_for
from .test_failover import client

pytestmark = pytest.mark.cluster
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(os.environ.get("HACLUSTER_TEST_OUTPUT", "test-output")) / "console"
PAGES = ["#/", "#/hosts", "#/hosts/host1", "#/vms", "#/vms/web-ui", "#/alarms", "#/incidents",
         "#/storage",
         "#/operations", "#/events", "#/rules", "#/balance", "#/policy", "#/tokens"]


@pytest.fixture
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), "chromium is missing: scripts/setup installs it"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run"])
        try:
            yield b
        finally:
            b.close()


def open_console(browser: Browser, lab: LabRun, host: str = "host1") -> tuple[Page, list[str]]:
    """A logged-in page on `host`'s console, and the page errors seen (expected empty)."""
    url = next(h["web"] for h in lab.status() if h["name"] == host)
    # the lab CA is not the browser's: TLS itself is tested with the lab CA elsewhere
    context = browser.new_context(ignore_https_errors=True,
                                  viewport={"width": 1300, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}")
            if r.status >= 400 and not r.url.endswith("/api/v1/session") else None)
    page.goto(url)
    page.fill("input[name=token]", lab.token)
    page.click("text=Log in with token")
    page.wait_for_selector("[data-testid=card-leader]")
    expect(page.locator("[data-testid=live]")).to_have_text("live", timeout=10_000)
    return page, errors


def go(page: Page, route: str) -> None:
    page.goto(page.url.split("#")[0] + route)


def test_create_see_it_run_migrate_and_every_page(make_lab: Callable[..., LabRun],
                                                  browser: Browser) -> None:
    lab = make_lab(3)
    page, errors = open_console(browser, lab)
    go(page, "#/vms")
    page.click("[data-testid=create-vm]")
    page.fill("input[name=name]", "web-ui")
    page.fill("input[name=memory_mib]", "128")
    page.click("[data-testid=submit]")
    # no reload: the live stream brings the row in, then its status
    row = page.locator("[data-vm=web-ui]")
    expect(row).to_contain_text("running", timeout=15_000)
    wait_for(lambda: "web-ui" in lab.running(), what="web-ui running per libvirt")
    source = lab.running()["web-ui"][0]
    assert source in row.inner_text()

    go(page, "#/vms/web-ui")
    page.click("[data-testid=migrate]")
    target = next(h for h in ("host1", "host2", "host3") if h != source)
    page.select_option("[data-testid=migrate-target]", target)
    expect(page.locator("[data-testid=migrate-check]")).to_contain_text(
        f"{target} can take it")
    page.click("[data-testid=confirm]")
    facts = page.locator("[data-testid=vm-facts]")
    expect(facts).to_contain_text(re.compile(rf"Host\s*{target}\s*Observed"), timeout=20_000)
    wait_for(lambda: lab.running().get("web-ui") == [target], what="moved per libvirt")
    # its serial console, opened on demand: the test driver's domains have none, said so
    page.click("[data-testid=serial-open]")
    expect(page.locator("[data-testid=serial-note]")).to_contain_text(
        f"web-ui on {target} has no console log")
    assert [e for e in errors if "/console" in e] == [
        e for e in errors if e.startswith("409 ") and "/vms/web-ui/console?tail=50" in e]
    errors[:] = [e for e in errors if "/console" not in e]  # that refusal was the point

    SHOTS.mkdir(parents=True, exist_ok=True)
    for route in PAGES:
        go(page, route)
        page.wait_for_selector("main h2")
        page.wait_for_timeout(800)  # charts and live figures
        name = route.strip("#/").replace("/", "-") or "dashboard"
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
        assert page.locator("main h2").first.inner_text() != "Cannot show this page", route
    assert errors == []


def test_a_lost_host_timeline_fills_in_live_as_its_what_if_said(
        make_lab: Callable[..., LabRun], browser: Browser) -> None:
    lab = make_lab(3)
    # placement by committed figures only: the live CPU load of lab hosts (one machine)
    # moves between the question and the failover
    lab.hactl("cluster", "policy", "set", "weight_cpu=0", endpoints=lab.endpoints)
    cl = client(lab)
    for i in range(6):
        cl.create_vm(f"vm{i}", vcpus=1, memory_mib=256)
    wait_for(lambda: len(lab.running()) == 6, what="VMs running")
    leader = cl.status()["leader"]
    victim = max((h for h in ("host1", "host2", "host3") if h != leader),
                 key=lambda h: sum(1 for hosts in lab.running().values() if hosts == [h]))
    watcher = leader  # the console of a member that stays up
    page, errors = open_console(browser, lab, watcher)
    go(page, f"#/hosts/{victim}")
    table = page.locator("[data-testid=what-if]")
    expect(table.locator("tr[data-vm]").first).to_be_visible(timeout=10_000)
    predicted = {}
    for tr in table.locator("tr[data-vm]").all():
        cells = tr.locator("td").all_inner_texts()
        predicted[cells[0]] = cells[1]
    assert predicted and all(t in ("host1", "host2", "host3") and t != victim
                             for t in predicted.values()), predicted

    go(page, "#/incidents")
    page.wait_for_selector("main h2")
    lab.lab("kill", victim)
    row = page.locator("[data-incident]").first
    expect(row).to_contain_text(victim, timeout=20_000)  # no reload
    row.locator("a").click()
    timeline = page.locator("[data-testid=timeline]")
    expect(timeline).to_contain_text("declared down", timeout=10_000)
    for vm in predicted:
        expect(timeline).to_contain_text(
            re.compile(rf"running on {predicted[vm]} after"), timeout=30_000)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "incident-timeline.png"), full_page=True)
    now = {vm: hosts for vm, hosts in lab.running().items()}
    assert {vm: now[vm] for vm in predicted} == {vm: [t] for vm, t in predicted.items()}
    assert errors == []
