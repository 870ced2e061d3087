"""Read untrusted archives (zip, tar, tar.gz, gz, and archives inside them) as streams.

Bundles come from machines we do not trust, so nothing is ever extracted or written: every
member is read through a guard that counts the bytes it hands out and stops a member that
grows past the limits (one member, the whole unit, or too many output bytes per input byte).
Hostile names, links, encryption and broken containers become Problems; the walk goes on.

The names, limits and Problems it works with are defined in `sources.py`.
"""

from __future__ import annotations

import gzip
import io
import itertools
import lzma
import os
import stat
import struct
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from .sources import (
    UNDECIDED,
    ArchiveDamaged,
    LimitExceeded,
    Limits,
    Problem,
    SourceError,
    archive_stem,
    detect_archive,
    gunzipped_name,
    host_candidate,
    is_archive_name,
    is_fleet,
    logical_of,
    member_parts,
)
from .streams import PrefixedStream, SnapshotFile

#: Reads from a decompressor are cut into chunks this big, so a bomb is caught early.
CHUNK = 1 << 20
#: The ratio limit is judged only after this many output bytes: tiny members may compress very well.
RATIO_GRACE = 1 << 20
#: Enough of a stream to recognise every container we read (tar's magic sits at byte 257).
HEAD = 512
#: A member found damaged within its first SALVAGE_WITHIN bytes is read again in SALVAGE_STEP
#: steps, so the bytes before the damage are kept (see _Guard._salvage).
SALVAGE_WITHIN, SALVAGE_STEP = 8 << 20, 512
#: Tar metadata (pax and GNU long-name headers) that tarfile would hold in memory at once.
TAR_HEADER_ALLOWANCE = 16 << 20
#: A zip inside an archive needs a seekable copy: up to this size in memory, beyond it on disk.
SPILL_IN_MEMORY = 8 << 20

_DAMAGE = (EOFError, OSError, zlib.error, zipfile.BadZipFile, tarfile.TarError, lzma.LZMAError, struct.error)


def _show(raw: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in raw)


def _mib(n: int | float) -> str:
    return f"{n / (1 << 20):.1f} MiB"


_Opener = Callable[[ExitStack], BinaryIO]


@dataclass
class Found:
    """A regular file found inside a unit, with the stream to read it."""

    where: tuple[tuple[str, ...], ...]
    size: int | None
    host: str | None
    stream: BinaryIO


@dataclass
class _Ctx:
    """The one budget of a unit, shared by every layer of it: bytes out, entries, Problems."""

    limits: Limits
    total: int = 0
    members: int = 0
    problems: list[Problem] = field(default_factory=list)
    #: the unit's expansion budget (Limits.expansion_budget of the input file's size), set when
    #: the top-level file turns out to be an archive
    budget: int | None = None
    input_bytes: int = 0

    def report(self, where: tuple, reason: str, detail: str) -> Problem:
        problem = Problem(logical_of(where), reason, detail)
        self.problems.append(problem)
        return problem

    def flush(self) -> Iterator[Problem]:
        out, self.problems = self.problems, []
        yield from out

    def count_member(self, where: tuple) -> None:
        self.members += 1
        if self.members > self.limits.max_members:
            p = self.report(where, "too_many_members", f"More than {self.limits.max_members} entries in "
                            "this bundle; the rest was not read.")
            raise LimitExceeded(p, fatal=True)

    def skip(self, where: tuple, n: int) -> None:
        """Bytes a tar stream decompresses to get past an entry nobody reads count toward the total."""
        self.charge(where, n)

    def charge(self, where: tuple, n: int) -> Problem | None:
        """Count n bytes read out of any layer; the Problem that ends the unit when over budget."""
        self.total += n
        if self.total > self.limits.max_total_bytes:
            p = self.report(where, "too_large", f"The bundle expands past {_mib(self.limits.max_total_bytes)}; "
                            "reading stopped here and the rest of it was skipped.")
            raise LimitExceeded(p, fatal=True)
        if self.budget is not None and self.total > self.budget:
            lim = self.limits
            p = self.report(where, "zip_bomb", f"The bundle expands past {_mib(self.budget)} over all its layers "
                            f"(its budget: {lim.max_expansion:g} times its {self.input_bytes} bytes, at least "
                            f"{_mib(lim.expansion_grace)}); reading stopped here as a likely zip bomb and the "
                            "rest of it was skipped.")
            raise LimitExceeded(p, fatal=True)
        return None

    def damaged(self, where: tuple, exc: BaseException, during: str, note: str = "") -> ArchiveDamaged:
        text = (str(exc) or type(exc).__name__).rstrip(".")
        short = isinstance(exc, EOFError | tarfile.EmptyHeaderError | tarfile.TruncatedHeaderError)
        if short or "unexpected end" in text or "end-of-stream" in text:
            reason, what = "truncated_archive", "ends too early (cut short?)"
        else:
            reason, what = "corrupt_archive", "is corrupt"
        return ArchiveDamaged(self.report(where, reason, f"The archive {what} {during}: {text}.{note}"))


class _Counter:
    """Pass-through reader that counts the bytes taken from below (compressed input)."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw, self.n = raw, 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.n += len(data)
        return data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self.raw.seekable()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self.raw.seek(offset, whence)

    def tell(self) -> int:
        return self.raw.tell()


class _Guard(io.RawIOBase):
    """A member's stream: counts output, enforces the limits, turns decoder failures into Problems."""

    def __init__(
        self, raw: BinaryIO, ctx: _Ctx, where: tuple, counter: _Counter, in0: int | None = None, note: str = "",
        reopen: Callable[[], BinaryIO] | None = None,
    ) -> None:
        self._raw, self._ctx, self._where, self._counter, self._note = raw, ctx, where, counter, note
        self._in0 = counter.n if in0 is None else in0  # compressed bytes taken before this member
        # one decoder step per read: a decoder that fails returns nothing of the step it fails in
        self._read_some = getattr(raw, "read1", raw.read)
        self._reopen = reopen  # the member again from its start (zip), to salvage the failed step
        self.out = 0
        self.error: SourceError | None = None
        self._pending = b""

    def read(self, n: int | None = -1) -> bytes:
        """n bytes (fewer only at the end), as a buffered reader gives them, but a failure after
        some bytes came hands those out first: the failure is raised again by the next read.
        A read of everything (n < 0) raises: it asked for the whole member."""
        whole = n is None or n < 0
        n = self._ctx.limits.max_member_bytes + 1 if whole else n
        parts, got = [], 0
        while got < n:
            try:
                data = self._take(min(n - got, CHUNK))
            except Exception:
                if parts and not whole:
                    break
                raise
            if not data:
                break
            parts.append(data)
            got += len(data)
        return b"".join(parts)

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.out - len(self._pending)

    def readinto(self, b: bytearray | memoryview) -> int:
        data = self._take(len(b))
        b[: len(data)] = data
        return len(data)

    def peek_head(self, n: int = HEAD) -> bytes:
        """Read up to n bytes ahead (for sniffing) without consuming them."""
        while len(self._pending) < n:
            data = self._pull(n - len(self._pending))
            if not data:
                break
            self._pending += data
        return self._pending[:n]

    def drain(self) -> None:
        """Read what the consumer left, counted like the rest (a tar stream must get past it).

        Works after the consumer closed its stream: closing only ends the consumer's view.
        """
        self._pending = b""
        while self._pull(CHUNK):
            pass

    def spill(self, cap: int) -> BinaryIO | None:
        """The whole member in a seekable temporary file (in memory while small), or None when it
        is longer than cap. Its bytes pass through this guard: they count in the unit's budget."""
        spool = tempfile.SpooledTemporaryFile(max_size=SPILL_IN_MEMORY, prefix="umtriage-")  # noqa: SIM115
        try:
            while data := self._take(CHUNK):
                if spool.tell() + len(data) > cap:
                    spool.close()
                    return None
                spool.write(data)
        except BaseException:
            spool.close()
            raise
        spool.seek(0)
        return spool  # type: ignore[return-value]

    def _take(self, n: int) -> bytes:
        if self.closed:
            raise ValueError("the stream of an archive member is only valid until the next item")
        if self._pending:
            data, self._pending = self._pending[:n], self._pending[n:]
            return data
        data = self._pull(n)
        if len(data) > n:  # what a salvage found beyond the request
            data, self._pending = data[:n], data[n:]
        return data

    def _pull(self, n: int) -> bytes:
        if self.error is not None:
            raise self.error
        try:
            data = self._read_some(min(n, CHUNK))
        except SourceError as exc:  # an outer layer's limit or damage: already reported
            self.error = exc
            raise
        except _DAMAGE as exc:
            self.error = self._ctx.damaged(self._where, exc, "while reading this member", self._note)
            data = self._salvage()
            if not data:
                raise self.error from exc
        self._account(len(data))
        return data

    def _salvage(self) -> bytes:
        """The bytes of the failed step that come before the damage, read again in small steps.

        A small member is one decoder step: without this, damage at its end (a bad CRC, a torn
        deflate block) would lose every line of it. Only for members read from their start
        again cheaply (zip), and only early in a member (a big one loses at most one step).
        """
        if self._reopen is None or self.out > SALVAGE_WITHIN:
            return b""
        got, seen = [], 0
        try:
            with closing(self._reopen()) as again:
                read = getattr(again, "read1", again.read)
                while seen < self.out + CHUNK:
                    piece = read(SALVAGE_STEP)
                    if not piece:
                        break
                    keep = piece[max(0, self.out - seen):]
                    seen += len(piece)
                    if keep:
                        got.append(keep)
        except (*_DAMAGE, ValueError):
            pass
        return b"".join(got)

    def _account(self, n: int) -> None:
        lim, ctx = self._ctx.limits, self._ctx
        self.out += n
        try:
            ctx.charge(self._where, n)
        except LimitExceeded as exc:
            self.error = exc
            raise
        if self.out > lim.max_member_bytes:
            self._fail("too_large", f"This member is larger than {_mib(lim.max_member_bytes)}; "
                       "it was read only up to that size.")
        taken = max(1, self._counter.n - self._in0)
        if self.out > RATIO_GRACE and self.out > lim.max_ratio * taken:
            self._fail("zip_bomb", f"This member expands more than {lim.max_ratio:g} times "
                       f"({_mib(self.out)} out of {taken} compressed bytes); reading stopped as a likely "
                       "zip bomb.")

    def _fail(self, reason: str, detail: str, *, fatal: bool = False) -> None:
        note = "" if fatal else self._note
        self.error = LimitExceeded(self._ctx.report(self._where, reason, detail + note), fatal=fatal)
        raise self.error


class _TarFeed:
    """What tarfile reads from: refuses header data (pax, long names) that tarfile would buffer whole."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw, self.served, self.until = raw, 0, TAR_HEADER_ALLOWANCE

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.served += len(data)
        if self.served > self.until:
            raise tarfile.ReadError(f"more than {_mib(TAR_HEADER_ALLOWANCE)} of header data in a row")
        return data


class _TarInfo(tarfile.TarInfo):
    """Remembers why a stream-mode tar ended: tarfile stops silently on a cut or broken header."""

    @classmethod
    def fromtarfile(cls, tf: tarfile.TarFile) -> tarfile.TarInfo:
        try:
            return super().fromtarfile(tf)
        except tarfile.HeaderError as exc:
            tf.umtriage_end = exc  # type: ignore[attr-defined]
            raise


def _zip_declared_entries(fp: BinaryIO) -> int | None:
    """Entry count from the end-of-central-directory record, read before zipfile loads them all."""
    size = fp.seek(0, io.SEEK_END)
    start = max(0, size - (65535 + 22))
    fp.seek(start)
    tail = fp.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        return None
    (count,) = struct.unpack("<H", tail[at + 10 : at + 12])
    if count == 0xFFFF and at >= 20 and tail[at - 20 : at - 16] == b"PK\x06\x07":
        (where,) = struct.unpack("<Q", tail[at - 12 : at - 4])
        fp.seek(where)
        record = fp.read(56)
        if record[:4] == b"PK\x06\x06" and len(record) == 56:
            (count,) = struct.unpack("<Q", record[32:40])
    return count


def _overlapping(infos: list[zipfile.ZipInfo]) -> bool:
    """Members whose data overlap: the construction of non-recursive zip bombs."""
    spans = sorted((i.header_offset, i.compress_size) for i in infos)
    return any(b[0] < a[0] + 30 + a[1] for a, b in itertools.pairwise(spans))


def _is_link_mode(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


class Walker:
    """Walks one unit, layer by layer; Problems go to ctx, streams are yielded as Found."""

    def __init__(self, ctx: _Ctx) -> None:
        self.ctx = ctx
        self.lim = ctx.limits

    def walk_path(self, path: Path, where: tuple, host: str | None) -> Iterator[Found]:
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        except OSError as exc:
            self.ctx.report(where, "unreadable", f"The file cannot be opened: {exc.strerror or exc}.")
            return
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                self.ctx.report(where, "special_file", "Not a regular file; skipped.")
                return
            head = f.read(HEAD)
            f.seek(0)
            kind = detect_archive(head)
            if kind is None:
                if self._named_like_archive(where, head):
                    return
                yield Found(where, st.st_size, None if host is UNDECIDED else host, SnapshotFile(f, st.st_size))
                return
            if self.lim.max_depth < 1:
                self.ctx.report(where, "too_deep", "Archives are not opened (max_depth is 0).")
                return
            self.ctx.input_bytes, self.ctx.budget = st.st_size, self.lim.expansion_budget(st.st_size)
            yield from self._walk_archive(kind, f, where, 1, host, _file_opener(path))

    def _walk_archive(
        self, kind: str, src: BinaryIO, where: tuple, depth: int, host: str | None, reopen: _Opener | None
    ) -> Iterator[Found]:
        if kind == "zip":
            yield from self._walk_zip(src, where, depth, host)
        elif kind == "tar":
            counter = _Counter(src)
            yield from self._walk_tar(counter, counter, where, depth, host, reopen)
        else:
            yield from self._walk_gzip(src, where, depth, host, reopen)

    def _named_like_archive(self, where: tuple, head: bytes) -> bool:
        """A file named .zip/.tar/.gz that is no archive is reported, not parsed as a log."""
        if not is_archive_name(where[-1][-1]):
            return False
        self.ctx.report(where, "corrupt_archive", "The name says archive but the content has no archive "
                        f"signature ({len(head)} bytes at the start); skipped.")
        return True

    def _member(
        self, guard: _Guard, where: tuple, size: int | None, host: str | None, depth: int, reopen: _Opener | None
    ) -> Iterator[Found]:
        """One member: a nested archive is walked in place, anything else is yielded as a stream."""
        head = guard.peek_head()
        kind = detect_archive(head)
        if kind is None:
            if not self._named_like_archive(where, head):
                # the guard itself, not a buffer over it: a buffer drops what it had read when a read fails
                yield Found(where, size, None if host is UNDECIDED else host, guard)  # type: ignore[arg-type]
                if guard.error is not None and guard.error.fatal:  # the consumer hit the unit's budget
                    raise guard.error
            return
        if depth + 1 > self.lim.max_depth:
            self.ctx.report(where, "too_deep", f"An archive nested more than {self.lim.max_depth} levels "
                            "deep; not opened.")
            return
        if kind == "zip":  # zipfile seeks: the member is copied out once (bounded, and counted)
            spilled = guard.spill(self.lim.max_nested_zip_bytes)
            if spilled is None:
                self.ctx.report(where, "too_large", "A zip inside an archive is copied to a temporary file to "
                                f"be read and this one is over {_mib(self.lim.max_nested_zip_bytes)}; extract "
                                "it and scan it on its own.")
                return
            with closing(spilled):
                yield from self._walk_zip(spilled, where, depth + 1, host)
        else:
            yield from self._walk_archive(kind, guard, where, depth + 1, host, reopen)  # type: ignore[arg-type]

    def _chooser(self, where: tuple, host: str | None, entries: Callable[[], list]) -> Callable[..., str | None]:
        """Decide members' hosts: inherited, the archive's stem, or each member's top folder (fleet)."""
        if host is not UNDECIDED:
            return lambda parts: host
        listed = entries()
        if not is_fleet(listed):
            stem = archive_stem(where[-1][-1])
            from .filehosts import name_hosts  # a flat bundle of SRV01_WindowsUpdate.log, SRV02_...

            named = name_hosts(listed)
            return (lambda parts: named.get(parts, stem)) if named else (lambda parts: stem)

        def fleet_host(parts: tuple[str, ...]) -> str | None:
            if len(parts) > 1:
                return host_candidate(parts[0])
            return host_candidate(archive_stem(parts[0])) if is_archive_name(parts[0]) else None

        return fleet_host

    def _walk_zip(self, fp: BinaryIO, where: tuple, depth: int, host: str | None) -> Iterator[Found]:
        ctx = self.ctx
        declared = _zip_declared_entries(fp)
        fp.seek(0)
        if declared is not None and ctx.members + declared > self.lim.max_members:
            p = ctx.report(where, "too_many_members", f"The zip lists {declared} entries, more than the "
                           f"{self.lim.max_members} allowed; not read.")
            raise LimitExceeded(p, fatal=True)
        counter = _Counter(fp)
        try:
            zf = zipfile.ZipFile(counter)  # type: ignore[arg-type]
        except (*_DAMAGE, ValueError, NotImplementedError) as exc:  # the last: a directory entry asking
            # for a zip version this reader lacks, as a damaged byte can make it
            if declared is None:
                ctx.report(where, "truncated_archive", "The zip has no central directory at its end: the file "
                           "was cut short or is not a complete zip; nothing in it could be read.")
            else:
                ctx.report(where, "corrupt_archive", f"The zip's directory cannot be read: {exc}.")
            return
        with zf:
            infos = zf.infolist()
            if _overlapping(infos):
                ctx.report(where, "zip_bomb", "Members of this zip overlap each other, a known zip-bomb "
                           "construction; the archive was not read.")
                return
            names = [(info, *member_parts(info.filename)) for info in infos]
            choose = self._chooser(where, host, lambda: [(p, i.is_dir()) for i, p, r in names if p and not r])
            seen: dict[tuple[str, ...], int] = {}
            for info, parts, refused in names:
                mwhere = (*where, _distinct(seen, parts) if parts else (_show(info.filename),))
                ctx.count_member(mwhere)
                if self._refused(mwhere, refused) or info.is_dir() or not parts:
                    continue
                if self._zip_refuses(info, mwhere):
                    continue
                yield from self._zip_member(zf, info, counter, mwhere, choose(parts), depth)

    def _refused(self, where: tuple, reason: str | None) -> bool:
        if reason == "absolute_path":
            self.ctx.report(where, reason, "The member's name is an absolute path; skipped.")
        elif reason == "path_traversal":
            self.ctx.report(where, reason, "The member's name climbs out of the archive with '..'; skipped.")
        return reason is not None

    def _zip_refuses(self, info: zipfile.ZipInfo, where: tuple) -> bool:
        """Checks on the declared entry, before any byte of it is decompressed."""
        lim, report = self.lim, self.ctx.report
        if _is_link_mode(info):
            report(where, "special_file", "A symbolic link stored in the zip; not followed.")
        elif info.flag_bits & 0x1:
            report(where, "encrypted", "The member is encrypted; it cannot be read without its password.")
        elif info.file_size > RATIO_GRACE and info.file_size > lim.max_ratio * max(1, info.compress_size):
            report(where, "zip_bomb", f"The member declares {_mib(info.file_size)} from {info.compress_size} "
                   f"compressed bytes (over {lim.max_ratio:g}x); skipped as a likely zip bomb.")
        elif info.file_size > lim.max_member_bytes:
            report(where, "too_large", f"The member declares {_mib(info.file_size)}, over the "
                   f"{_mib(lim.max_member_bytes)} limit; skipped.")
        else:
            return False
        return True

    def _zip_member(
        self, zf: zipfile.ZipFile, info: zipfile.ZipInfo, counter: _Counter, where: tuple,
        host: str | None, depth: int,
    ) -> Iterator[Found]:
        in0 = counter.n  # the local header counts as input too
        try:
            raw = zf.open(info)
        except NotImplementedError as exc:
            self.ctx.report(where, "unreadable", f"The member uses a method this tool cannot read: {exc}.")
            return
        except (*_DAMAGE, ValueError) as exc:
            self.ctx.damaged(where, exc, "at this member's header")
            return
        guard = _Guard(raw, self.ctx, where, counter, in0, reopen=lambda: zf.open(info))
        with closing(raw), closing(guard):
            try:
                yield from self._member(guard, where, info.file_size, host, depth, None)
            except SourceError as exc:
                if exc.fatal:
                    raise

    def _walk_tar(
        self, src: BinaryIO, counter: _Counter, where: tuple, depth: int, host: str | None,
        reopen: _Opener | None,
    ) -> Iterator[Found]:
        """Stream-mode tar: nothing is seeked, each member is read (or skipped) once, in order."""
        ctx = self.ctx
        feed = _TarFeed(src)
        try:  # closed by the `with tf` below; opened here so a bad first header becomes a Problem
            tf = tarfile.open(fileobj=feed, mode="r|", tarinfo=_TarInfo)  # type: ignore[arg-type]  # noqa: SIM115
        except _DAMAGE as exc:
            ctx.damaged(where, exc, "at its first header")
            return
        budget = self.ctx.budget or self.lim.max_total_bytes
        choose = self._chooser(where, host, lambda: _tar_entries(reopen, self.lim, budget) if reopen else [])
        seen: dict[tuple[str, ...], int] = {}
        with tf:
            while True:
                try:
                    ti = tf.next()
                except _DAMAGE as exc:
                    ctx.damaged(where, exc, "between members; the rest of it was not read")
                    return
                if ti is None:
                    break
                tf.members.clear()  # stream mode never looks back: keep memory flat
                feed.until = tf.offset + TAR_HEADER_ALLOWANCE
                parts, refused = member_parts(ti.name)
                mwhere = (*where, _distinct(seen, parts) if parts else (_show(ti.name),))
                ctx.count_member(mwhere)
                if self._refused(mwhere, refused) or ti.isdir() or not parts or self._tar_refuses(ti, mwhere):
                    ctx.skip(mwhere, tf.offset - ti.offset_data)
                    continue
                guard = _Guard(tf.extractfile(ti), ctx, mwhere, counter,  # type: ignore[arg-type]
                               note=" The rest of this tar was not read.")
                with closing(guard):
                    try:
                        yield from self._member(guard, mwhere, ti.size, choose(parts), depth, None)
                        guard.drain()
                    except SourceError as exc:
                        if exc.fatal:
                            raise
                    if guard.error is not None:  # the stream cannot be trusted past this point
                        return
            end = getattr(tf, "umtriage_end", None)
            if end is not None and not isinstance(end, tarfile.EOFHeaderError):
                ctx.damaged(where, end, "after its last readable member")

    def _tar_refuses(self, ti: tarfile.TarInfo, where: tuple) -> bool:
        if ti.issym() or ti.islnk():
            kind = "symbolic" if ti.issym() else "hard"
            _, bad = member_parts(ti.linkname)
            reason = "symlink_outside" if bad or ti.linkname.startswith(("/", "\\")) else "special_file"
            self.ctx.report(where, reason, f"A {kind} link to '{_show(ti.linkname)}' in the tar; not followed.")
        elif not ti.isreg():
            self.ctx.report(where, "special_file", "A device, fifo or other special entry in the tar; skipped.")
        elif ti.size > self.lim.max_member_bytes:
            self.ctx.report(where, "too_large", f"The member declares {_mib(ti.size)}, over the "
                            f"{_mib(self.lim.max_member_bytes)} limit; skipped.")
        else:
            return False
        return True

    def _walk_gzip(
        self, src: BinaryIO, where: tuple, depth: int, host: str | None, reopen: _Opener | None
    ) -> Iterator[Found]:
        """A .gz holds a tar (read as one layer with it) or a single file named after the .gz."""
        counter = _Counter(src)
        gz = gzip.GzipFile(fileobj=counter, mode="rb")  # type: ignore[arg-type]
        try:
            head = gz.read(HEAD)
        except _DAMAGE as exc:
            self.ctx.damaged(where, exc, "at its start")
            return
        inner = PrefixedStream(head, gz)
        gz_reopen = _gunzip_opener(reopen)
        if detect_archive(head) == "tar":
            yield from self._walk_tar(inner, counter, where, depth, host, gz_reopen)  # type: ignore[arg-type]
            return
        mwhere = (*where, (gunzipped_name(where[-1][-1]),))
        self.ctx.count_member(mwhere)
        guard = _Guard(inner, self.ctx, mwhere, counter)  # type: ignore[arg-type]
        with closing(guard):
            try:
                yield from self._member(guard, mwhere, None, host, depth, gz_reopen)
            except SourceError as exc:
                if exc.fatal:
                    raise


def _distinct(seen: dict[tuple[str, ...], int], parts: tuple[str, ...]) -> tuple[str, ...]:
    """A member's name parts, made distinct: the second `x.log` in one archive is `x.log#2`.

    Zip and tar both allow a name twice (an appended update, a hostile bundle); two sources
    of one name would merge in the tables and in summary.json.
    """
    n = seen[parts] = seen.get(parts, 0) + 1
    return parts if n == 1 else (*parts[:-1], f"{parts[-1]}#{n}")


def _file_opener(path: Path) -> _Opener:
    """Open the unit again from its start (the tar first pass); the ExitStack closes it."""
    return lambda st: st.enter_context(path.open("rb"))


def _gunzip_opener(reopen: _Opener | None) -> _Opener | None:
    if reopen is None:
        return None
    return lambda st: st.enter_context(gzip.GzipFile(fileobj=reopen(st), mode="rb"))


def _tar_entries(reopen: _Opener, lim: Limits, budget: int) -> list[tuple[tuple[str, ...], bool]]:
    """Names in a tar, read in a first pass to tell a fleet tar from a single-host one.

    Best effort: a damaged or oversized tar yields the names seen so far; the real pass reports why.
    """
    entries: list[tuple[tuple[str, ...], bool]] = []
    with ExitStack() as st:
        feed = _TarFeed(reopen(st))
        try:
            tf = st.enter_context(tarfile.open(fileobj=feed, mode="r|"))  # type: ignore[arg-type]
            while (ti := tf.next()) is not None and len(entries) < lim.max_members:
                tf.members.clear()
                feed.until = tf.offset + TAR_HEADER_ALLOWANCE
                if feed.served > budget:
                    break
                parts, refused = member_parts(ti.name)
                if parts and not refused:
                    entries.append((parts, ti.isdir()))
        except _DAMAGE:
            pass
    return entries


def walk_unit(path: Path, rel_parts: tuple[str, ...], host: str | None, limits: Limits) -> Iterator[Found | Problem]:
    """Every regular file in the file at `path` (itself, or an archive's members) and every Problem, in order.

    `host` is the host already known from the folder layout, or UNDECIDED.
    """
    ctx = _Ctx(limits)
    walker = Walker(ctx).walk_path(path, (rel_parts,), host)
    with closing(walker):
        try:
            for found in walker:
                yield from ctx.flush()
                yield found
        except SourceError:
            pass  # fatal: already reported, the rest of the unit is skipped
    yield from ctx.flush()
