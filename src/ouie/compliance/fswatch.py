"""Watch folders for audio being written while something runs: the proof behind "no audio
file is ever written", measured instead of claimed.

Two independent mechanisms, so one blind spot does not hide a leak:

* **a live watch** (Linux, through libc with ctypes; no dependency), one of:

  - **fanotify** (needs CAP_SYS_ADMIN, e.g. root): every file closed after writing on the
    mounts that hold the roots is reported with the *id of the process that wrote it*, and
    its first bytes are read through the event's own file descriptor, so a file written
    and deleted at once is still examined. Files are attributed to this process and its
    children, to another process (reported, not counted: on a shared machine other
    programs write audio too), or to an unknown writer that exited before it could be
    identified (counted, to err on the safe side);
  - **inotify** otherwise: every folder under the roots is watched for files created,
    written, closed or moved in. It cannot tell who wrote a file, so every audio file
    written under the roots counts.
* **after-scan**: at the end, every file under the roots whose modification or status
  change time is after the start is examined (files still open, another OS, a queue
  overflow). Files the live watch did not see are counted as of unknown origin.

A file counts as audio when its name has an audio or array suffix (``.wav``, ``.flac``,
``.npy``, ...) or when its first bytes carry an audio or NumPy magic number (a WAV saved
as ``.dat`` is still found).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import select
import struct
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

#: Suffixes of audio, raw sample and array files (spectrograms are arrays).
AUDIO_SUFFIXES = frozenset(
    {
        ".wav",
        ".wave",
        ".flac",
        ".ogg",
        ".oga",
        ".opus",
        ".mp3",
        ".m4a",
        ".aac",
        ".aif",
        ".aiff",
        ".aifc",
        ".au",
        ".snd",
        ".caf",
        ".wv",
        ".webm",
        ".mka",
        ".amr",
        ".wma",
        ".pcm",
        ".raw",
        ".s16",
        ".f32",
        ".npy",
        ".npz",
    }
)

#: (offset, bytes, offset2, bytes2 or b"") → name. ``bytes2`` must also match when given.
_MAGIC: tuple[tuple[int, bytes, int, bytes, str], ...] = (
    (0, b"RIFF", 8, b"WAVE", "WAV"),
    (0, b"RF64", 8, b"WAVE", "WAV (RF64)"),
    (0, b"fLaC", 0, b"", "FLAC"),
    (0, b"OggS", 0, b"", "Ogg"),
    (0, b"ID3", 0, b"", "MP3 (ID3)"),
    (0, b"\xff\xfb", 0, b"", "MP3"),
    (0, b"\xff\xf3", 0, b"", "MP3"),
    (0, b"FORM", 8, b"AIFF", "AIFF"),
    (0, b"FORM", 8, b"AIFC", "AIFF-C"),
    (0, b".snd", 0, b"", "AU"),
    (0, b"caff", 0, b"", "CAF"),
    (0, b"wvpk", 0, b"", "WavPack"),
    (0, b"\x1aE\xdf\xa3", 0, b"", "Matroska/WebM"),
    (4, b"ftypM4A", 0, b"", "M4A"),
    (0, b"#!AMR", 0, b"", "AMR"),
    (0, b"\x93NUMPY", 0, b"", "NumPy array"),
)
_MAGIC_BYTES = 16


def audio_magic(head: bytes) -> str | None:
    """Name of the audio/array format whose magic number starts ``head``, else None."""
    for offset, magic, offset2, magic2, name in _MAGIC:
        if head[offset : offset + len(magic)] != magic:
            continue
        if magic2 and head[offset2 : offset2 + len(magic2)] != magic2:
            continue
        return name
    return None


def audio_reason(path: Path, read_magic: bool = True) -> str | None:
    """Why ``path`` looks like audio (suffix or magic number), or None."""
    suffix = path.suffix.lower()
    if suffix in AUDIO_SUFFIXES:
        return f"suffix {suffix}"
    if not read_magic:
        return None
    try:
        with path.open("rb") as handle:
            head = handle.read(_MAGIC_BYTES)
    except OSError:
        return None
    name = audio_magic(head)
    return f"{name} magic number" if name else None


Owner = Literal["self", "other", "unknown"]


@dataclass(frozen=True)
class AudioFile:
    path: str
    reason: str
    seen_by: str  # "fanotify", "inotify" or "scan"
    owner: Owner = "unknown"
    pid: int | None = None


@dataclass
class WatchResult:
    roots: list[str]
    method: str
    audio_files: list[AudioFile] = field(default_factory=list)  # counted
    foreign_files: list[AudioFile] = field(default_factory=list)  # other processes' files
    files_checked: int = 0  # files written during the run that were examined
    overflowed: bool = False

    @property
    def count(self) -> int:
        return len({f.path for f in self.audio_files})


def _distinct_roots(roots: Iterable[Path]) -> list[Path]:
    """Existing roots, resolved, without those inside another root."""
    resolved = sorted({r.resolve() for r in roots if r.exists()}, key=lambda p: len(p.parts))
    kept: list[Path] = []
    for root in resolved:
        if not any(root == k or k in root.parents for k in kept):
            kept.append(root)
    return kept


def _under(path: str, roots: Sequence[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def _walk_dirs(root: Path) -> Iterator[str]:
    stack = [str(root)]
    while stack:
        folder = stack.pop()
        yield folder
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
        except OSError:
            continue


def _walk_files(root: Path) -> Iterator[os.DirEntry[str]]:
    stack = [str(root)]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    elif entry.is_file(follow_symlinks=False):
                        yield entry
        except OSError:
            continue


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


class _Watcher:
    """A live watch: a reader thread over a notification file descriptor."""

    method = ""

    def __init__(self) -> None:
        self.fd = -1
        self.found: dict[str, AudioFile] = {}
        self.foreign: dict[str, AudioFile] = {}
        self.checked: set[str] = set()
        self.overflowed = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ouie-fswatch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        time.sleep(0.05)  # let the kernel queue the last events
        self._stop.set()
        self._thread.join(timeout=5.0)
        self._drain()
        os.close(self.fd)

    def _run(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.fd], [], [], 0.1)
            if ready:
                self._drain()

    def _drain(self) -> None:
        while True:
            try:
                data = os.read(self.fd, 1 << 16)
            except (BlockingIOError, OSError):
                return
            if not data:
                return
            self._parse(data)

    def _parse(self, data: bytes) -> None:
        raise NotImplementedError


# inotify(7)
_IN_MODIFY = 0x00000002
_IN_CLOSE_WRITE = 0x00000008
_IN_MOVED_TO = 0x00000080
_IN_CREATE = 0x00000100
_IN_Q_OVERFLOW = 0x00004000
_IN_ISDIR = 0x40000000
_IN_ONLYDIR = 0x01000000
_IN_DONT_FOLLOW = 0x02000000
_IN_MASK = _IN_MODIFY | _IN_CLOSE_WRITE | _IN_MOVED_TO | _IN_CREATE | _IN_ONLYDIR | _IN_DONT_FOLLOW
_IN_EVENT = struct.Struct("iIII")


class _Inotify(_Watcher):
    """Every folder under the roots; no writer identity."""

    method = "inotify"

    def __init__(self, roots: Sequence[Path], max_watches: int) -> None:
        super().__init__()
        self._libc = _libc()
        fd = int(self._libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC))
        if fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        self.fd = fd
        self.max_watches = max_watches
        self.folders: dict[int, str] = {}
        for root in roots:
            self._add_tree(str(root))

    def _add_tree(self, root: str) -> None:
        for folder in _walk_dirs(Path(root)):
            if len(self.folders) >= self.max_watches:
                self.overflowed = True
                return
            wd = int(self._libc.inotify_add_watch(self.fd, folder.encode(), _IN_MASK))
            if wd >= 0:
                self.folders[wd] = folder

    def _parse(self, data: bytes) -> None:
        offset = 0
        while offset + _IN_EVENT.size <= len(data):
            wd, mask, _cookie, length = _IN_EVENT.unpack_from(data, offset)
            raw = data[offset + _IN_EVENT.size : offset + _IN_EVENT.size + length]
            offset += _IN_EVENT.size + length
            if mask & _IN_Q_OVERFLOW:
                self.overflowed = True
                continue
            folder = self.folders.get(wd)
            name = raw.rstrip(b"\0").decode("utf-8", "surrogateescape")
            if folder is None or not name:
                continue
            path = os.path.join(folder, name)
            if mask & _IN_ISDIR:
                if mask & (_IN_CREATE | _IN_MOVED_TO):
                    self._add_tree(path)
                    for entry in _walk_files(Path(path)):  # written before the watch existed
                        self._note(entry.path, read_magic=True)
                continue
            self._note(path, read_magic=bool(mask & (_IN_CLOSE_WRITE | _IN_MOVED_TO)))

    def _note(self, path: str, read_magic: bool) -> None:
        self.checked.add(path)
        if path in self.found:
            return
        reason = audio_reason(Path(path), read_magic=read_magic)
        if reason:
            self.found[path] = AudioFile(path, reason, "inotify")


# fanotify(7)
_FAN_CLASS_NOTIF = 0x0
_FAN_CLOEXEC = 0x1
_FAN_NONBLOCK = 0x2
_FAN_MARK_ADD = 0x1
_FAN_MARK_MOUNT = 0x10
_FAN_CLOSE_WRITE = 0x8
_FAN_Q_OVERFLOW = 0x4000
_FAN_NOFD = -1
_FAN_EVENT = struct.Struct("=IBBHQii")
_O_LARGEFILE = getattr(os, "O_LARGEFILE", 0o100000)


def _parent_pid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after the last ")"
    fields = stat[stat.rfind(b")") + 2 :].split()
    return int(fields[1]) if len(fields) > 1 else None


def owner_of(pid: int, me: int | None = None) -> Owner:
    """``self`` when ``pid`` is this process or one of its descendants, ``other`` when it
    is someone else's, ``unknown`` when it has exited."""
    me = os.getpid() if me is None else me
    current: int | None = pid
    for _ in range(64):
        if current == me:
            return "self"
        if current is None or current <= 1:
            return "other"
        parent = _parent_pid(current)
        if parent is None:
            return "unknown" if current == pid else "other"
        current = parent
    return "other"


class _Fanotify(_Watcher):
    """Whole mounts, with the writer's process id; needs CAP_SYS_ADMIN."""

    method = "fanotify"

    def __init__(self, roots: Sequence[Path]) -> None:
        super().__init__()
        libc = _libc()
        libc.fanotify_mark.argtypes = [
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint64,
            ctypes.c_int,
            ctypes.c_char_p,
        ]
        flags = _FAN_CLASS_NOTIF | _FAN_CLOEXEC | _FAN_NONBLOCK
        fd = int(libc.fanotify_init(flags, os.O_RDONLY | _O_LARGEFILE | os.O_CLOEXEC))
        if fd < 0:
            raise OSError(ctypes.get_errno(), "fanotify_init failed (needs CAP_SYS_ADMIN)")
        self.fd = fd
        self.roots = [str(r) for r in roots]
        self.me = os.getpid()
        devices: set[int] = set()
        for root in roots:
            device = os.stat(root).st_dev
            if device in devices:
                continue
            devices.add(device)
            mark = libc.fanotify_mark(
                fd, _FAN_MARK_ADD | _FAN_MARK_MOUNT, _FAN_CLOSE_WRITE, -100, str(root).encode()
            )
            if mark < 0:
                error = ctypes.get_errno()
                os.close(fd)
                raise OSError(error, f"fanotify_mark failed on {root}")

    def _parse(self, data: bytes) -> None:
        offset = 0
        while offset + _FAN_EVENT.size <= len(data):
            length, _vers, _res, _meta, mask, fd, pid = _FAN_EVENT.unpack_from(data, offset)
            offset += max(length, _FAN_EVENT.size)
            if mask & _FAN_Q_OVERFLOW:
                self.overflowed = True
            if fd == _FAN_NOFD or fd < 0:
                continue
            try:
                self._event(fd, pid)
            finally:
                os.close(fd)

    def _event(self, fd: int, pid: int) -> None:
        try:
            path = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return
        path = path.removesuffix(" (deleted)")
        if not _under(path, self.roots):
            return
        self.checked.add(path)
        reason: str | None = None
        suffix = Path(path).suffix.lower()
        if suffix in AUDIO_SUFFIXES:
            reason = f"suffix {suffix}"
        else:
            try:
                name = audio_magic(os.pread(fd, _MAGIC_BYTES, 0))
            except OSError:
                name = None
            reason = f"{name} magic number" if name else None
        if reason is None:
            return
        owner = owner_of(pid, self.me)
        record = AudioFile(path, reason, "fanotify", owner, pid)
        if owner == "other":
            self.foreign.setdefault(path, record)
        else:
            self.found.setdefault(path, record)


class FileWatch:
    """Context manager: ``with FileWatch([tmp, cwd, home]) as watch: ...``; then
    ``watch.result`` lists every audio-like file written under the roots meanwhile.

    ``method``: ``"auto"`` (fanotify where permitted, else inotify), ``"fanotify"``,
    ``"inotify"`` or ``"scan"`` (after-scan only)."""

    def __init__(
        self,
        roots: Sequence[Path],
        method: str = "auto",
        max_watches: int = 100_000,
        slack_s: float = 1.0,
    ) -> None:
        self.roots = _distinct_roots(roots)
        self.slack_ns = round(slack_s * 1e9)
        self.method = method
        self.max_watches = max_watches
        self._watcher: _Watcher | None = None
        self._start_ns = 0
        self.result: WatchResult | None = None

    def __enter__(self) -> FileWatch:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _open_watcher(self) -> _Watcher | None:
        if self.method in ("auto", "fanotify"):
            try:
                return _Fanotify(self.roots)
            except (OSError, AttributeError):
                if self.method == "fanotify":
                    raise
        if self.method in ("auto", "inotify"):
            try:
                return _Inotify(self.roots, self.max_watches)
            except (OSError, AttributeError):
                if self.method == "inotify":
                    raise
        return None

    def start(self) -> None:
        self._watcher = self._open_watcher()
        if self._watcher is not None:
            self._watcher.start()
        # slack for file systems with coarse timestamps
        self._start_ns = time.time_ns() - self.slack_ns

    def stop(self) -> WatchResult:
        if self.result is not None:
            return self.result
        found: dict[str, AudioFile] = {}
        foreign: dict[str, AudioFile] = {}
        checked: set[str] = set()
        method = "scan"
        overflowed = False
        if self._watcher is not None:
            self._watcher.stop()
            method = f"{self._watcher.method}+scan"
            overflowed = self._watcher.overflowed
            checked |= self._watcher.checked
            found.update(self._watcher.found)
            foreign.update(self._watcher.foreign)
            self._watcher = None
        for root in self.roots:
            for entry in _walk_files(root):
                try:
                    stat = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if max(stat.st_mtime_ns, stat.st_ctime_ns) < self._start_ns:
                    continue
                checked.add(entry.path)
                if entry.path in found or entry.path in foreign:
                    continue
                why = audio_reason(Path(entry.path))
                if why:
                    found[entry.path] = AudioFile(entry.path, why, "scan")
        self.result = WatchResult(
            roots=[str(r) for r in self.roots],
            method=method,
            audio_files=sorted(found.values(), key=lambda f: f.path),
            foreign_files=sorted(foreign.values(), key=lambda f: f.path),
            files_checked=len(checked),
            overflowed=overflowed,
        )
        return self.result


def default_roots() -> list[Path]:
    """Where a careless or hostile change would most likely write: the temporary folder,
    the working directory and the home directory."""
    import tempfile

    return [Path(tempfile.gettempdir()), Path.cwd(), Path.home()]
