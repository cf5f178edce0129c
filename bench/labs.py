"""A lab for a benchmark: started, waited for, always stopped."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from hacluster.lab import cluster as lab_mod


@contextmanager
def running_lab(base_ip: str, nodes: int = 3, settings: Sequence[str] = (),
                profile: str = "safe") -> Iterator[lab_mod.Lab]:
    with tempfile.TemporaryDirectory() as tmp:
        lab = lab_mod.create(tmp, nodes, base_ip, log_level="WARNING", settings=settings,
                             profile=profile)
        try:
            for h in lab.hosts:
                lab.start_host(h)
            lab_mod.wait_until_up(lab)
            yield lab
        finally:
            lab.stop_all()
