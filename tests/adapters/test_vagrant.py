"""The shipped Vagrant lab file is valid (vagrant validate: offline, no box needed). Skipped
where Vagrant and its libvirt provider are not installed (Debian: vagrant vagrant-libvirt)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


@pytest.mark.skipif(shutil.which("vagrant") is None, reason="vagrant is not installed")
def test_vagrantfile_validates() -> None:
    folder = Path(__file__).resolve().parents[2] / "vagrant"
    proc = subprocess.run(["vagrant", "validate"], cwd=folder, capture_output=True, text=True,
                          timeout=120)
    if "provider" in proc.stdout + proc.stderr and proc.returncode != 0:
        pytest.skip("the vagrant-libvirt provider is not installed")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "validated successfully" in proc.stdout
