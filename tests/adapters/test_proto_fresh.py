"""The committed gRPC code in hacluster/v1 matches proto/ (run scripts/gen-proto if not)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_generated_code_is_fresh(tmp_path: Path) -> None:
    pytest.importorskip("grpc_tools")
    shutil.copytree(ROOT / "proto", tmp_path / "proto")
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-Iproto", "--python_out=.",
                    "--pyi_out=.", "--grpc_python_out=.", "proto/hacluster/v1/cluster.proto"],
                   cwd=tmp_path, check=True)
    for name in ("cluster_pb2.py", "cluster_pb2.pyi", "cluster_pb2_grpc.py"):
        fresh = (tmp_path / "hacluster" / "v1" / name).read_text()
        assert fresh == (ROOT / "hacluster" / "v1" / name).read_text(), (
            f"hacluster/v1/{name} is stale: run scripts/gen-proto")
