"""The lab's fence agent (one per host, like fence_ipmilan -o off): powers the host off and
exits 0 once it is off.   python -m hacluster.lab.fence LAB_DIR HOST"""

from __future__ import annotations

import sys

from .cluster import Lab, LabError


def main() -> int:
    lab_dir, host = sys.argv[1:3]
    try:
        lab = Lab.load(lab_dir)
        killed = lab.kill_host(lab.host(host))
    except LabError as exc:
        print(f"fence {host}: {exc}", file=sys.stderr)
        return 1
    print(f"fence {host}: off ({', '.join(killed) or 'was already off'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
