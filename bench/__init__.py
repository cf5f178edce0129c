"""Benchmarks. hacluster is imported before anything here imports grpc: it sets gRPC's
environment first (see hacluster/__init__.py)."""

import hacluster  # noqa: F401
