"""What a member keeps on disk, on a real file system: the journal, the term/vote file and
the snapshot survive reopening, a torn last write is cut off, and anything worse is refused
with one line naming the file."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hacluster.raftstore import (
    SNAPSHOT_MAGIC,
    DiskFull,
    FileJournal,
    Meta,
    SnapshotStore,
    StorageError,
    decode_snapshot,
    encode_snapshot,
)


def filled(path: Path, n: int = 20) -> FileJournal:
    journal = FileJournal(str(path / "raft.journal"))
    for i in range(1, n + 1):
        journal.add(b"command-%d" % i, i, 1 + i // 10)
    journal.sync()
    journal.setRaftCommitIndex(n)
    journal.setCurrentTerm(3, "10.0.0.1:7400")
    return journal


def test_entries_term_and_vote_survive_reopening(tmp_path: Path) -> None:
    journal = filled(tmp_path)
    journal._destroy()
    again = FileJournal(str(tmp_path / "raft.journal"))
    assert len(again) == 20 and again[4] == (b"command-5", 5, 1) and again[-1][1] == 20
    assert (again.getCurrentTerm(), again.getVotedForNodeId(), again.getRaftCommitIndex()) == (
        3, "10.0.0.1:7400", 20)


def test_sync_is_one_fdatasync_for_many_entries(tmp_path: Path) -> None:
    journal = filled(tmp_path, 0)
    for i in range(1, 51):
        journal.add(b"x", i, 1)
    journal.sync()
    journal.sync()  # nothing new: no second sync
    assert journal.stats.count == 1


def test_truncation_and_compaction_are_durable(tmp_path: Path) -> None:
    journal = filled(tmp_path)
    journal.setRaftCommitIndex(5)
    journal.onOneSecondTimer()
    journal.deleteEntriesFrom(10)  # a follower drops entries 11.. (a leader's conflict)
    journal.deleteEntriesTo(3)  # compaction keeps entries 4..10
    journal.add(b"new", 11, 4)
    journal.sync()
    journal._destroy()
    again = FileJournal(str(tmp_path / "raft.journal"))
    assert [again[i][1] for i in range(len(again))] == list(range(4, 12))
    assert again[-1] == (b"new", 11, 4)


def test_a_torn_last_record_is_cut_off(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    filled(tmp_path)._destroy()
    path = tmp_path / "raft.journal"
    data = path.read_bytes()
    end = data.rstrip(b"\0")
    # a crash in the middle of writing record 21: its header and half its body
    torn = end + bytes.fromhex("0a000000deadbeef") + (21).to_bytes(8, "little") + b"\x01" * 9
    path.write_bytes(torn + b"\0" * 100)
    again = FileJournal(str(path))
    assert len(again) == 20
    assert "torn last record" in caplog.text


@pytest.mark.parametrize("where", [0.3, 0.6])
def test_a_flipped_bit_inside_is_refused_naming_the_file(tmp_path: Path, where: float) -> None:
    filled(tmp_path)._destroy()
    path = tmp_path / "raft.journal"
    data = bytearray(path.read_bytes())
    pos = int(len(data.rstrip(b"\0")) * where)
    data[pos] ^= 0x10
    path.write_bytes(bytes(data))
    with pytest.raises(StorageError) as err:
        FileJournal(str(path))
    assert str(path) in str(err.value) and "wipe" in str(err.value)
    assert "\n" not in str(err.value)


def test_a_journal_shorter_than_what_was_committed_is_refused(tmp_path: Path) -> None:
    filled(tmp_path)._destroy()
    path = tmp_path / "raft.journal"
    data = path.read_bytes().rstrip(b"\0")
    path.write_bytes(data[:len(data) // 2])  # cut in the middle of a record, half lost
    with pytest.raises(StorageError, match="committed"):
        FileJournal(str(path))


def test_a_lost_journal_or_term_file_is_refused(tmp_path: Path) -> None:
    filled(tmp_path)._destroy()
    (tmp_path / "raft.journal").rename(tmp_path / "aside")
    with pytest.raises(StorageError, match="committed"):
        FileJournal(str(tmp_path / "raft.journal"))
    (tmp_path / "raft.journal").unlink()
    (tmp_path / "aside").rename(tmp_path / "raft.journal")
    (tmp_path / "raft.journal.meta").unlink()
    with pytest.raises(StorageError, match="term and vote are lost"):
        FileJournal(str(tmp_path / "raft.journal"))


@pytest.mark.parametrize("damage", ["truncated", "term changed"])
def test_a_damaged_term_file_is_refused(tmp_path: Path, damage: str) -> None:
    meta = Meta(tmp_path / "m")
    meta.set_term(3, "a:1")
    raw = (tmp_path / "m").read_bytes()
    raw = raw[:-3] if damage == "truncated" else raw.replace(b'"term": 3', b'"term": 9')
    assert raw != (tmp_path / "m").read_bytes()
    (tmp_path / "m").write_bytes(raw)
    with pytest.raises(StorageError, match="damaged term/vote file"):
        Meta(tmp_path / "m")


def test_snapshot_round_trip_and_damage(tmp_path: Path) -> None:
    raw = encode_snapshot({"x": [1, 2]}, (b"\x00last", 9, 2), (b"prev", 8, 2), ["b:1", "a:1"])
    assert decode_snapshot(tmp_path, raw) == ({"x": [1, 2]}, (b"\x00last", 9, 2),
                                               (b"prev", 8, 2), ["a:1", "b:1"])
    flipped = bytearray(raw)
    flipped[-5] ^= 1
    with pytest.raises(StorageError, match="checksum"):
        decode_snapshot(tmp_path, bytes(flipped))
    with pytest.raises(StorageError, match="truncated"):
        decode_snapshot(tmp_path, raw[:-10])


def test_snapshot_store_writes_in_the_background_and_streams(tmp_path: Path) -> None:
    store = SnapshotStore(str(tmp_path / "snap"), 1000, lambda s: {"n": s}, lambda d: d["n"])
    store.serialize((7, (b"l", 5, 1), (b"p", 4, 1), ["a:1"]), 4)
    import time
    deadline = time.monotonic() + 5
    while store.checkSerializing()[0] != 2:  # SUCCESS
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert store.deserialize() == (7, (b"l", 5, 1), (b"p", 4, 1), ["a:1"])
    receiver = SnapshotStore(str(tmp_path / "other"), 1000, lambda s: s, lambda d: d["n"])
    while (chunk := store.getTransmissionData("peer")) is not None:
        done = receiver.setTransmissionData(chunk)
        if chunk[2]:
            break
    assert done and receiver.deserialize()[0] == 7


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root")
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_full_disk_is_a_clean_error_before_anything_is_written(small_disk: Path) -> None:
    journal = FileJournal(str(small_disk / "raft.journal"))
    journal.setCurrentTerm(1, None)
    big = b"y" * 100_000
    stored = 0
    with pytest.raises(DiskFull, match="no space left"):
        for i in range(1, 1000):
            journal.add(big, i, 1)
            stored = i
    journal.sync()
    assert len(journal) == stored  # the refused entry is not half there
    journal._destroy()
    again = FileJournal(str(small_disk / "raft.journal"))
    assert len(again) == stored and again[-1][1] == stored


def test_a_snapshot_is_encoded_a_slice_of_a_table_at_a_time(monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    """The same bytes as one json.dumps, but no single call gets a whole table: each call
    holds the GIL, and a 10,000-VM table in one held it 150 ms (a leader's Raft thread stood
    still that long while its snapshot was written)."""
    vms = [{"name": f"vm{i}", "host": None if i % 3 else "h1", "disks": [{"gib": i}]}
           for i in range(1000)]
    state = {"vms": vms, "uuids": {f"u{i}": f"vm{i}" for i in range(700)},
             "hosts": {"h1": {"cpus": 8, "labels": {"rack": "r1"}}}, "revision": 7,
             "empty": [], "keys": {1: "a"}}
    last, prev = (b"last", 12, 3), (b"prev", 11, 3)
    whole = json.dumps({"format": 1, "last": ["bGFzdA==", 12, 3], "prev": ["cHJldg==", 11, 3],
                        "cluster": ["a", "b"],
                        "state": state}, separators=(",", ":"))
    biggest: list[int] = []
    real = json.dumps

    def counting(value: Any, **kwargs: Any) -> str:
        text = real(value, **kwargs)
        biggest.append(len(text))
        return text
    monkeypatch.setattr(json, "dumps", counting)
    raw = encode_snapshot(state, last, prev, ["b", "a"])
    assert gzip.decompress(raw[len(SNAPSHOT_MAGIC) + 12:]).decode() == whole
    assert max(biggest) < len(whole) / 4  # a slice: 200 of the 1,000 VMs and a little
    paused: list[int] = []  # the writer's pauses fall between slices, and change nothing
    assert encode_snapshot(state, last, prev, ["b", "a"], lambda: paused.append(1)) == raw
    assert len(paused) >= 1000 // 200
