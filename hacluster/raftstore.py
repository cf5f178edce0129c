"""What a Raft member keeps on disk: its journal, its term and vote, and its snapshot.

pysyncobj's own files are unsafe for an HA cluster (../shared/notes/pysyncobj.md): no fsync, a
journal that a torn write or a flipped bit turns into a `struct.error` crash loop, a pickled
term/vote file that silently reads as "never voted" when damaged, and snapshots pickled in
the Raft thread. These replace them in our fork of its core (hacluster/raftfork):

- FileJournal: append-only records, each with a CRC-32; space allocated ahead in chunks, so a
  full disk is an error before a record is half written (never a SIGBUS from an mmap);
  `sync()` (fdatasync) is called by the fork before an entry counts as stored: a follower
  before it acknowledges, the leader before it counts itself in a majority. Several entries
  stored in one tick share one sync (group commit).
- Meta: term, vote and commit index as checksummed JSON, replaced atomically (write, fsync,
  rename, fsync the directory).
- SnapshotStore: the state machine's snapshot as checksummed, gzipped JSON, written by a
  background thread from an immutable state object so the Raft tick never stalls; streamed
  to lagging followers in chunks and verified before it is loaded.

A file that cannot be trusted raises StorageError with one line naming it and what to do;
haclusterd stops with an exit status systemd does not restart in a loop. A torn last record
(a power cut in the middle of a write the member never acknowledged) is cut off with a
warning; anything else, including a journal shorter than what was already committed, is an
error.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import gzip
import json
import logging
import os
import struct
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

Entry = tuple[bytes, int, int]  # (command, index, term), as pysyncobj keeps them

WIPE_HINT = ("this member's data cannot be trusted: wipe it and rejoin from the other members "
             "with `haclusterd --config FILE --wipe-data` (README: Recovering a member)")


class StorageError(Exception):
    """A data file is damaged or unreadable; the member must not run on it."""

    def __init__(self, path: str | os.PathLike[str], problem: str, hint: str = WIPE_HINT) -> None:
        super().__init__(f"{path}: {problem}; {hint}")
        self.path, self.problem, self.hint = str(path), problem, hint

    def __reduce__(self) -> tuple[type[StorageError], tuple[str, str, str]]:
        """Pickled whole: a Raft process (raftproc.py) hands it to its daemon."""
        return StorageError, (self.path, self.problem, self.hint)


class DiskFull(Exception):
    """No space to store an entry; nothing was written."""


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make a rename or a new file in this directory durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, data: bytes) -> None:
    """Replace path with data: all of it or none, durable when this returns."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFull(f"{path}: no space left on the device") from exc
        raise
    fsync_dir(path.parent)


# ---- the journal ---------------------------------------------------------------------------

MAGIC = b"HACLRAFTJOURNAL1"  # 16 bytes
RECORD = struct.Struct("<IIQQ")  # payload length, crc32(index, term, command), index, term
CHUNK = 4 << 20  # space reserved ahead of the writes...
MIN_CHUNK = 64 << 10  # ...or less, on a disk nearly full


@dataclass
class SyncStats:
    """fsyncs of the journal, for benchmarks and metrics."""

    count: int = 0
    seconds: float = 0.0


class FileJournal:
    """pysyncobj's Journal interface, durable and checked. Entries stay in memory too (as in
    pysyncobj): the journal is bounded by snapshots, not by RAM."""

    def __init__(self, path: str, fsync: bool = True) -> None:
        self.path = Path(path)
        self.meta = Meta(Path(path + ".meta"))
        self.fsync = fsync
        self.stats = SyncStats()
        self._entries: list[Entry] = []
        self._offsets: list[int] = []  # file offset of each entry's record
        self._dirty = False
        self._torn_at: int | None = None
        self._full_logged = float("-inf")
        existed = self.path.exists()
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StorageError(self.path, f"cannot open: {exc.strerror}") from exc
        if existed and os.fstat(self._fd).st_size:
            self._end = self._load()
        else:
            self._write_header()
            self._end = len(MAGIC)
        self._allocated = os.fstat(self._fd).st_size
        committed = self.meta.commit_index
        last = self._entries[-1][1] if self._entries else 0
        if committed > max(last, 1):
            raise StorageError(self.path, f"ends at entry {last} but entries up to {committed} "
                               "were already committed here (truncated, or lost?)")
        if not self.meta.path.exists() and any(term for _, _, term in self._entries):
            raise StorageError(self.meta.path, "missing: the journal holds entries of elected "
                               "terms, so this member's term and vote are lost")
        if self._torn_at is not None:
            log.warning("%s: cutting off a torn last record at byte %d (a write interrupted by "
                        "a crash, never acknowledged)", self.path, self._torn_at)
            os.pwrite(self._fd, b"\0" * (os.fstat(self._fd).st_size - self._torn_at),
                      self._torn_at)
            os.fsync(self._fd)

    # -- loading ---------------------------------------------------------------------------

    def _write_header(self) -> None:
        os.pwrite(self._fd, MAGIC, 0)
        os.fsync(self._fd)
        fsync_dir(self.path.parent)

    def _load(self) -> int:
        size = os.fstat(self._fd).st_size
        try:
            data = os.pread(self._fd, size, 0)
        except OSError as exc:
            raise StorageError(self.path, f"cannot read: {exc.strerror}") from exc
        if data[:len(MAGIC)] != MAGIC:
            raise StorageError(self.path, "not an hacluster journal (bad header)")
        pos = len(MAGIC)
        while pos + RECORD.size <= size:
            length, crc, idx, term = RECORD.unpack_from(data, pos)
            if length == 0 and crc == 0 and idx == 0:
                if data[pos:].strip(b"\0"):
                    raise StorageError(self.path, f"damaged at byte {pos}: a gap before more data")
                return pos  # the end: preallocated zeros follow
            end = pos + RECORD.size + length
            body = data[pos + RECORD.size:end]
            if end > size or zlib.crc32(body, zlib.crc32(data[pos + 8:pos + 24])) != crc:
                return self._torn(data, pos, end, size)
            if self._entries and idx != self._entries[-1][1] + 1:
                raise StorageError(self.path, f"entry {idx} at byte {pos} follows entry "
                                   f"{self._entries[-1][1]}: entries are missing")
            self._entries.append((bytes(body), idx, term))
            self._offsets.append(pos)
            pos = end
        if data[pos:].strip(b"\0"):
            return self._torn(data, pos, size, size)
        return pos

    def _torn(self, data: bytes, pos: int, end: int, size: int) -> int:
        """A bad record: the tail of a write cut short by a crash (only zeros, or nothing,
        after it), or damage (anything after it). Only the first can be repaired."""
        if end < size and data[end:].strip(b"\0"):
            raise StorageError(self.path, f"record at byte {pos} is damaged (checksum mismatch) "
                               "and more records follow it")
        self._torn_at = pos  # cut off once the rest checks out (see __init__)
        return pos

    # -- pysyncobj's Journal interface -------------------------------------------------------

    def add(self, command: bytes, idx: int, term: int) -> None:
        body = bytes(command)
        head = struct.pack("<QQ", idx, term)
        record = RECORD.pack(len(body), zlib.crc32(body, zlib.crc32(head)), idx, term) + body
        self._reserve(self._end + len(record))
        try:
            os.pwrite(self._fd, record, self._end)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise DiskFull(f"{self.path}: no space left on the device") from exc
            raise
        self._entries.append((body, idx, term))
        self._offsets.append(self._end)
        self._end += len(record)
        self._dirty = True

    def _reserve(self, end: int) -> None:
        """Allocate disk blocks ahead of the writes, so ENOSPC comes here, cleanly: a chunk
        of 4 MiB, or an eighth of what is free if that is less (never grab a nearly full
        disk's last space at once)."""
        if end <= self._allocated:
            return
        try:
            st = os.fstatvfs(self._fd)
            free = st.f_bavail * st.f_frsize
        except OSError:
            free = CHUNK * 8
        want = end + max(MIN_CHUNK, min(CHUNK, free // 8))
        try:
            os.posix_fallocate(self._fd, self._allocated, want - self._allocated)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise DiskFull(f"{self.path}: no space left on the device") from exc
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                raise
            os.ftruncate(self._fd, want)  # a file system without fallocate
        self._allocated = want

    def sync(self) -> None:
        """Make every added entry durable (one fdatasync for all of them)."""
        if not self._dirty:
            return
        if self.fsync:
            started = time.perf_counter()
            os.fdatasync(self._fd)
            self.stats.count += 1
            self.stats.seconds += time.perf_counter() - started
        self._dirty = False

    def flush(self) -> None:
        self.sync()

    def clear(self) -> None:
        self._truncate_at(len(MAGIC))
        self._entries, self._offsets = [], []

    def deleteEntriesFrom(self, entryFrom: int) -> None:
        if entryFrom >= len(self._entries):
            return
        self._truncate_at(self._offsets[entryFrom])
        del self._entries[entryFrom:]
        del self._offsets[entryFrom:]

    def _truncate_at(self, offset: int) -> None:
        """Zero everything from offset (space stays allocated), durably: a truncated tail must
        not come back after a crash."""
        if offset < self._end:
            os.pwrite(self._fd, b"\0" * (self._end - offset), offset)
            os.fdatasync(self._fd)
        self._end = offset

    def deleteEntriesTo(self, entryTo: int) -> None:
        """Compaction: keep entries from entryTo on, in a new file swapped in atomically."""
        keep = self._entries[entryTo:]
        tmp = self.path.with_name(self.path.name + ".compact")
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            parts = [MAGIC]
            offsets, pos = [], len(MAGIC)
            for body, idx, term in keep:
                head = struct.pack("<QQ", idx, term)
                record = RECORD.pack(len(body), zlib.crc32(body, zlib.crc32(head)), idx,
                                     term) + body
                parts.append(record)
                offsets.append(pos)
                pos += len(record)
            os.write(fd, b"".join(parts))
            os.fsync(fd)
        except OSError as exc:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise DiskFull(f"{tmp}: no space left on the device") from exc
            raise
        os.replace(tmp, self.path)
        fsync_dir(self.path.parent)
        os.close(self._fd)
        self._fd = fd
        self._entries, self._offsets, self._end = list(keep), offsets, pos
        self._allocated = pos
        self._dirty = False

    def __getitem__(self, item: Any) -> Any:
        return self._entries[item]

    def __len__(self) -> int:
        return len(self._entries)

    def _destroy(self) -> None:
        with contextlib.suppress(OSError, DiskFull):
            self.sync()
            self.meta.save_if_changed()
            os.close(self._fd)

    def setRaftCommitIndex(self, raftCommitIndex: int) -> None:
        self.meta.commit_index = raftCommitIndex

    def getRaftCommitIndex(self) -> int:
        return self.meta.commit_index

    def setCurrentTerm(self, term: int, votedForNodeId: str | None) -> None:
        # Raft: term and vote are durable before any message that reflects them is sent.
        self.meta.set_term(term, votedForNodeId)

    def getCurrentTerm(self) -> int:
        return self.meta.term

    def getVotedForNodeId(self) -> str | None:
        return self.meta.voted_for

    def onOneSecondTimer(self) -> None:
        try:
            self.meta.save_if_changed()
        except DiskFull as exc:
            # The commit index is saved for a check at start only: no reason to stop the
            # member. (Term and vote, which Raft needs stored, still raise when they fail.)
            now = time.monotonic()
            if now - self._full_logged > 10:
                log.error("%s; the commit index will be saved when there is room", exc)
                self._full_logged = now

    @property
    def size_bytes(self) -> int:
        return self._end


LEGACY_MAGIC = b"PYSYNCOBJ"


def convert_legacy(path: str) -> bool:
    """Rewrite a journal written by pysyncobj itself (hacluster 0.1) in our format, with its
    term and vote; the whole cluster is stopped for this upgrade (README). True if converted."""
    p = Path(path)
    if not p.is_file() or p.read_bytes()[:len(LEGACY_MAGIC)] != LEGACY_MAGIC:
        return False
    import pickle  # the old files are pickles of our own making

    data = p.read_bytes()
    end = struct.unpack_from("<I", data, 36)[0]
    entries, pos = [], 40
    while pos < end:
        size = struct.unpack_from("<I", data, pos)[0]
        idx, term = struct.unpack_from("<QQ", data, pos + 4)
        entries.append((data[pos + 20:pos + 4 + size], idx, term))
        pos += size + 8
    old_meta = Path(path + ".meta")
    meta = pickle.loads(old_meta.read_bytes()) if old_meta.exists() else {}
    p.rename(p.with_name(p.name + ".pysyncobj"))
    if old_meta.exists():
        old_meta.rename(old_meta.with_name(old_meta.name + ".pysyncobj"))
    journal = FileJournal(path)
    for entry in entries:
        journal.add(*entry)
    journal.sync()
    journal.meta.commit_index = int(meta.get("raftCommitIndex", 1))
    journal.meta.set_term(int(meta.get("currentTerm", 0)), meta.get("votedForNodeId"))
    journal._destroy()
    log.warning("%s: converted from the pysyncobj format (%d entries)", path, len(entries))
    return True


class Meta:
    """Term, vote (durable before use) and commit index (saved every second)."""

    FORMAT = 1

    def __init__(self, path: Path) -> None:
        self.path = path
        self.term = 0
        self.voted_for: str | None = None
        self.commit_index = 1
        self._saved: tuple[int, str | None, int] = (0, None, 1)
        if path.exists():
            self._load()

    def _load(self) -> None:
        try:
            raw = self.path.read_bytes()
        except OSError as exc:
            raise StorageError(self.path, f"cannot read: {exc.strerror}") from exc
        body, _, crc = raw.rpartition(b"\n")
        try:
            if zlib.crc32(body) != int(crc):
                raise ValueError("checksum mismatch")
            data = json.loads(body)
            if data.get("format") != self.FORMAT:
                raise ValueError(f"unknown format {data.get('format')!r}")
            self.term = int(data["term"])
            self.voted_for = data["voted_for"]
            self.commit_index = int(data["commit_index"])
        except (ValueError, KeyError, TypeError) as exc:
            raise StorageError(self.path, f"damaged term/vote file ({exc})") from exc
        self._saved = (self.term, self.voted_for, self.commit_index)

    def _save(self) -> None:
        state = (self.term, self.voted_for, self.commit_index)
        body = json.dumps({"format": self.FORMAT, "term": state[0], "voted_for": state[1],
                           "commit_index": state[2]}, sort_keys=True).encode()
        write_atomically(self.path, body + b"\n" + str(zlib.crc32(body)).encode())
        self._saved = state

    def set_term(self, term: int, voted_for: str | None) -> None:
        previous = (self.term, self.voted_for)
        self.term, self.voted_for = term, voted_for
        try:
            self._save()
        except Exception:
            self.term, self.voted_for = previous  # not stored: not in effect
            raise

    def save_if_changed(self) -> None:
        if (self.term, self.voted_for, self.commit_index) != self._saved:
            self._save()


# ---- snapshots -----------------------------------------------------------------------------

SNAPSHOT_MAGIC = b"HACLSNAP1\n"


class SnapshotState:  # pysyncobj's SERIALIZER_STATE values
    NOT_SERIALIZING, SERIALIZING, SUCCESS, FAILED = 0, 1, 2, 3


def _entry_json(entry: Entry) -> list[Any]:
    return [base64.b64encode(entry[0]).decode(), entry[1], entry[2]]


def _entry_from(data: list[Any]) -> Entry:
    return base64.b64decode(data[0]), int(data[1]), int(data[2])


ENCODE_SLICE = 200  # table entries per json.dumps call (a few ms of the GIL each)
SNAPSHOT_PAUSE = 0.003  # s the snapshot's writer sleeps after each slice


def snapshot_pause() -> None:
    """Between two slices of a snapshot's work: the Raft thread's turn. A thread that only
    computes hands the GIL over every switch interval but takes it straight back; the Raft
    thread, which gives it up at every send and receive, then waits a turn at each, and a
    leader writing a 10,000-VM snapshot on a loaded machine fell silent for over a second
    (its followers elected another). Sleeping halves the writer's pace and frees the rest."""
    time.sleep(SNAPSHOT_PAUSE)


def dumps_in_slices(value: Any, depth: int = 3,
                    pause: Callable[[], None] | None = None) -> str:
    """json.dumps(value, separators=(",", ":")), the same text, written a slice of a table
    at a time. json's encoder holds the GIL for the whole call: 150 ms for a 10,000-VM
    state, and longer when the machine is loaded, during which this member's Raft thread
    stands still (a leader writing its snapshot was deposed so). Between two slices any
    other thread gets its turn."""
    def sliced(part: Any) -> str:
        if pause is not None:
            pause()
        return json.dumps(part, separators=(",", ":"))[1:-1]

    if depth and isinstance(value, list) and len(value) > ENCODE_SLICE:
        return "[" + ",".join(sliced(value[i:i + ENCODE_SLICE])
                              for i in range(0, len(value), ENCODE_SLICE)) + "]"
    if not (depth and isinstance(value, dict) and all(isinstance(k, str) for k in value)):
        return json.dumps(value, separators=(",", ":"))
    if len(value) > ENCODE_SLICE:
        items = list(value.items())
        return "{" + ",".join(sliced(dict(items[i:i + ENCODE_SLICE]))
                              for i in range(0, len(items), ENCODE_SLICE)) + "}"
    return "{" + ",".join(f"{json.dumps(k)}:{dumps_in_slices(v, depth - 1, pause)}"
                          for k, v in value.items()) + "}"


def encode_snapshot(state: dict[str, Any], last: Entry, prev: Entry, cluster: list[str],
                    pause: Callable[[], None] | None = None) -> bytes:
    body = dumps_in_slices({"format": 1, "last": _entry_json(last), "prev": _entry_json(prev),
                            "cluster": sorted(cluster), "state": state}, pause=pause).encode()
    packed = gzip.compress(body, compresslevel=1)
    return SNAPSHOT_MAGIC + struct.pack("<IQ", zlib.crc32(packed), len(packed)) + packed


def decode_snapshot(path: Path, raw: bytes) -> tuple[dict[str, Any], Entry, Entry, list[str]]:
    head = len(SNAPSHOT_MAGIC) + 12
    if raw[:len(SNAPSHOT_MAGIC)] != SNAPSHOT_MAGIC or len(raw) < head:
        raise StorageError(path, "not an hacluster snapshot (bad header)")
    crc, length = struct.unpack_from("<IQ", raw, len(SNAPSHOT_MAGIC))
    packed = raw[head:]
    if len(packed) != length:
        raise StorageError(path, f"truncated ({len(packed)} of {length} bytes)")
    if zlib.crc32(packed) != crc:
        raise StorageError(path, "damaged (checksum mismatch)")
    try:
        data = json.loads(gzip.decompress(packed))
        return (data["state"], _entry_from(data["last"]), _entry_from(data["prev"]),
                [str(n) for n in data["cluster"]])
    except (ValueError, KeyError, TypeError, OSError) as exc:
        raise StorageError(path, f"damaged ({exc})") from exc


class SnapshotStore:
    """pysyncobj's Serializer interface, for our snapshot format. `to_plain` turns the state
    object handed over (immutable, so it can be written while the Raft thread moves on) into
    JSON-able data; `from_plain` is its inverse, run when a snapshot is loaded."""

    def __init__(self, path: str, batch_size: int, to_plain: Callable[[Any], dict[str, Any]],
                 from_plain: Callable[[dict[str, Any]], Any]) -> None:
        self.path = Path(path)
        self.batch_size = batch_size
        self.to_plain = to_plain
        self.from_plain = from_plain
        self._lock = threading.Lock()
        self._state = SnapshotState.NOT_SERIALIZING
        self._writing_id: int | None = None
        self._sending: dict[Any, Any] = {}
        self._receiving: Any = None
        self.index = 0  # entry index of the newest snapshot on disk
        self.last_seconds = 0.0  # how long writing the last one took
        self.last_bytes = 0
        self.failures = 0

    # -- writing ---------------------------------------------------------------------------

    def checkSerializing(self) -> tuple[int, int | None]:
        with self._lock:
            state = self._state
            if state in (SnapshotState.SUCCESS, SnapshotState.FAILED):
                self._state = SnapshotState.NOT_SERIALIZING
            return state, self._writing_id

    def serialize(self, data: tuple[Any, Entry, Entry, Any], id: int) -> None:
        """Start writing (in a thread of its own) the snapshot of the state at entry `id`."""
        with self._lock:
            if self._state == SnapshotState.SERIALIZING:
                return
            self._state, self._writing_id = SnapshotState.SERIALIZING, id
        state, last, prev, cluster = data
        nodes = [str(getattr(n, "address", n)) for n in cluster]
        threading.Thread(target=self._write, args=(state, last, prev, nodes), daemon=True,
                         name="raft-snapshot").start()

    def _write(self, state: Any, last: Entry, prev: Entry, cluster: list[str]) -> None:
        started = time.perf_counter()
        try:
            raw = encode_snapshot(self.to_plain(state), last, prev, cluster, snapshot_pause)
            write_atomically(self.path, raw)
            outcome = SnapshotState.SUCCESS
            self.index, self.last_bytes = last[1], len(raw)
            self.last_seconds = time.perf_counter() - started
            self._sending.clear()  # followers being sent an older one start again
        except Exception as exc:  # a snapshot that fails is retried later; the journal stays
            log.error("writing the snapshot %s failed: %s", self.path, exc)
            self.failures += 1
            outcome = SnapshotState.FAILED
        with self._lock:
            self._state = outcome

    # -- loading ---------------------------------------------------------------------------

    def exists(self) -> bool:
        return self.path.exists()

    def deserialize(self) -> tuple[Any, Entry, Entry, list[str]]:
        """(state object, last entry, previous entry, cluster members); StorageError if the
        file cannot be trusted."""
        try:
            raw = self.path.read_bytes()
        except OSError as exc:
            raise StorageError(self.path, f"cannot read: {exc.strerror}") from exc
        plain, last, prev, cluster = decode_snapshot(self.path, raw)
        self.index = last[1]
        return self.from_plain(plain), last, prev, cluster

    # -- streaming to and from other members ------------------------------------------------

    def getTransmissionData(self, transmissionID: Any) -> Any:
        with self._lock:
            if self._state == SnapshotState.SERIALIZING:
                return None
        sending = self._sending.get(transmissionID)
        if sending is None:
            try:
                sending = self._sending[transmissionID] = {"file": open(self.path, "rb"),  # noqa: SIM115
                                                           "sent": 0}
            except OSError as exc:
                log.error("cannot send the snapshot %s: %s", self.path, exc)
                return None
        first = sending["sent"] == 0
        chunk = sending["file"].read(self.batch_size)
        sending["sent"] += len(chunk)
        last = not chunk
        if last:
            sending["file"].close()
            self._sending.pop(transmissionID, None)
        return chunk, first, last

    def setTransmissionData(self, data: Any) -> bool:
        """A chunk of a snapshot from the leader; True once a whole, valid one is in place."""
        if data is None:
            return False
        chunk, first, last = data
        tmp = self.path.with_name(self.path.name + ".incoming")
        if first:
            self._receiving = bytearray()
        elif self._receiving is None:
            return False
        self._receiving += chunk
        if not last:
            return False
        raw, self._receiving = bytes(self._receiving), None
        try:
            decode_snapshot(tmp, raw)  # check it before it replaces ours
        except StorageError as exc:
            log.error("snapshot received from the leader is damaged, ignored: %s", exc)
            return False
        write_atomically(self.path, raw)
        return True

    def cancelTransmisstion(self, transmissionID: Any) -> None:
        sending = self._sending.pop(transmissionID, None)
        if sending is not None:
            sending["file"].close()
