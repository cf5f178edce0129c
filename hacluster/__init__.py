"""hacluster: an HA cluster manager for libvirt hosts.

gRPC's fork handlers are turned off before anything imports grpc. With them on (grpcio's
default), a child that Python forks with a real fork(), not vfork (to change user, as the lab
does to run each host's libvirtd as nobody), restarts gRPC's poller, meets the epoll descriptor
close_fds has just closed and dies before exec: about one child in 30 (grpc/grpc#43055;
tests/adapters/test_fork.py). hacluster never keeps using gRPC in a forked child.
"""

import os

os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
