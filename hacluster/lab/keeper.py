"""The lab's keeper: holds one connection to a host's libvirtd so its test-driver domains
persist while haclusterd crashes and restarts (libvirt's test driver forgets everything when
the last connection closes). Killing the keeper with its libvirtd is the lab's power loss."""

from __future__ import annotations

import signal
import sys
import time

import libvirt


def main() -> int:
    uri = sys.argv[1]
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    for _ in range(100):
        try:
            conn = libvirt.open(uri)
            break
        except libvirt.libvirtError:
            time.sleep(0.1)
    else:
        print(f"cannot connect to {uri}", flush=True)
        return 1
    print(f"connected to {uri}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while conn.isAlive():
        time.sleep(1.0)
    print("libvirtd went away", flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
