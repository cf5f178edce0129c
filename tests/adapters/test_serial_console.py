"""A VM's serial console on its host: the log read by tail and by offset, the domain XML
that makes QEMU keep that log, and the requests the API refuses."""

from __future__ import annotations

from pathlib import Path

from hacluster.core.model import Vm
from hacluster.hypervisor import console_log_of, domain_xml
from hacluster.serial_console import MAX_CHUNK, read_log, request_errors
from hacluster.v1 import cluster_pb2 as pb


def test_tail_then_follow_by_offset(tmp_path: Path) -> None:
    log = tmp_path / "vm.log"
    assert read_log(str(log), 5, None) == ("", 0)  # nothing printed yet
    log.write_bytes(b"".join(b"line %d\n" % i for i in range(10)))
    text, offset = read_log(str(log), 3, None)
    assert text == "line 7\nline 8\nline 9\n" and offset == log.stat().st_size
    assert read_log(str(log), 0, None) == ("", offset)  # just where it ends
    assert read_log(str(log), 0, offset) == ("", offset)  # nothing new
    with log.open("ab") as f:
        f.write(b"booted\n")
    assert read_log(str(log), 0, offset) == ("booted\n", offset + 7)


def test_a_log_started_anew_is_read_from_its_beginning(tmp_path: Path) -> None:
    log = tmp_path / "vm.log"
    log.write_bytes(b"x" * 100)
    log.write_bytes(b"new\n")
    assert read_log(str(log), 0, 100) == ("new\n", 4)


def test_a_large_backlog_comes_in_chunks_never_skipped(tmp_path: Path) -> None:
    log = tmp_path / "vm.log"
    log.write_bytes(b"a" * (MAX_CHUNK + 10))
    text, offset = read_log(str(log), 0, 0)
    assert len(text) == MAX_CHUNK and offset == MAX_CHUNK
    assert read_log(str(log), 0, offset) == ("a" * 10, MAX_CHUNK + 10)


def test_a_character_cut_by_the_end_of_the_log_comes_whole_later(tmp_path: Path) -> None:
    log = tmp_path / "vm.log"
    euro = "€".encode()  # three bytes
    log.write_bytes(b"price " + euro[:2])
    text, offset = read_log(str(log), 0, 0)
    assert (text, offset) == ("price ", 6)
    log.write_bytes(b"price " + euro + b"\n")
    assert read_log(str(log), 0, offset) == ("€\n", 10)


def test_qemu_domains_log_their_pty_console_and_the_path_is_found() -> None:
    vm = Vm(name="web1", uuid="0f0e0d0c-0000-4000-8000-000000000001", vcpus=1, memory_mib=64)
    xml = domain_xml(vm, "qemu", console_dir="/var/log/hacluster/consoles")
    assert "<serial type='pty'>" in xml and "<console type='pty'>" in xml
    assert console_log_of(xml) == "/var/log/hacluster/consoles/web1.log"
    assert console_log_of(domain_xml(vm, "test")) is None  # the test driver's: no console
    # an imported domain with a file serial: its path is the log
    imported = ("<domain><devices><serial type='file'><source path='/srv/c.log'/></serial>"
                "</devices></domain>")
    assert console_log_of(imported) == "/srv/c.log"


def test_requests_out_of_bounds_are_refused_with_reasons() -> None:
    assert request_errors(pb.ConsoleRequest(name="a", tail_lines=20)) == []
    errors = request_errors(pb.ConsoleRequest(name="a", tail_lines=10_001, after=-1,
                                              input=b"x" * 4097))
    assert len(errors) == 3 and "tail_lines" in errors[0] and "after" in errors[1] \
        and "4096" in errors[2]
