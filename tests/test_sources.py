"""Input side: folders and untrusted archives read as streams, with every refusal a Problem.

Every archive here is built by the test itself (zipfile, tarfile, gzip) and, for the hostile
cases, patched byte by byte the way a malicious bundle would be.
"""

from __future__ import annotations

import gzip
import io
import os
import socket
import stat
import struct
import tarfile
import zipfile
from pathlib import Path

import pytest
from umtriage.pipeline.sources import (
    LimitExceeded,
    Limits,
    Problem,
    SourceError,
    Unit,
    archive_stem,
    detect_archive,
    fallback_host,
    is_archive_name,
    iter_unit,
    list_units,
)

WU = b"2024-01-02 10:00:00:000  1234  abcd Agent  * START *\n"


# ---------------------------------------------------------------- helpers


def zip_bytes(members: list[tuple[str | zipfile.ZipInfo, bytes]], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return buf.getvalue()


def tar_bytes(members: list[tuple[str | tarfile.TarInfo, bytes]], mode: str = "w") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for name, data in members:
            info = name if isinstance(name, tarfile.TarInfo) else tarfile.TarInfo(name)
            if info.isreg():
                info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buf.getvalue()


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


DEFAULT = Limits()


def scan(unit: Unit, limits: Limits = DEFAULT) -> list[tuple]:
    """Read every item: ("file", logical, host, bytes, size) or ("problem", logical, reason)."""
    out: list[tuple] = []
    for item in iter_unit(unit, limits):
        if isinstance(item, Problem):
            out.append(("problem", item.logical, item.reason))
            continue
        ref, stream = item
        try:
            data = stream.read()
        except SourceError:
            data = None  # the Problem comes next from iter_unit
        out.append(("file", ref.logical, ref.path_host, data, ref.size))
    return out


def scan_paths(*paths: Path, limits: Limits = DEFAULT) -> list[tuple]:
    units, problems = list_units(list(paths))
    items = [("problem", p.logical, p.reason) for p in problems]
    for unit in units:
        items += scan(unit, limits)
    return items


def files(items: list[tuple]) -> dict[str, tuple]:
    return {i[1]: i[2:] for i in items if i[0] == "file"}


def problems(items: list[tuple]) -> dict[str, str]:
    return {i[1]: i[2] for i in items if i[0] == "problem"}


def one(path: Path) -> Unit:
    return Unit(path, path, (path.name,))


# ---------------------------------------------------------------- names and magic


def test_detect_archive_uses_magic_bytes_not_names():
    assert detect_archive(zip_bytes([("a.log", b"x")])[:512]) == "zip"
    assert detect_archive(gzip.compress(b"x")[:512]) == "gzip"
    assert detect_archive(tar_bytes([("a.log", b"x")])[:512]) == "tar"
    assert detect_archive(WU) is None
    assert detect_archive(b"") is None


def test_archive_names_and_stems():
    assert is_archive_name("SRV01.ZIP") and is_archive_name("web01.tar.gz") and is_archive_name("x.tgz")
    assert not is_archive_name("WindowsUpdate.log")
    assert archive_stem("web01.tar.gz") == "web01"
    assert archive_stem("SRV01.zip.gz") == "SRV01"
    assert archive_stem("srv01.contoso.com.zip") == "srv01.contoso.com"
    assert archive_stem("notes.txt") == "notes.txt"


# ---------------------------------------------------------------- folders


def test_folder_walk_is_recursive_sorted_and_hosts_come_from_the_first_folder(tmp_path):
    root = tmp_path / "bundle"
    write(root / "SRV02" / "b.log", b"b\n")
    write(root / "SRV01" / "Windows" / "Logs" / "WindowsUpdate.log", WU)
    write(root / "SRV01" / "a.log", b"a\n")
    write(root / "loose.log", b"l\n")
    units, probs = list_units([root])
    assert probs == []
    assert [u.rel_parts for u in units] == [
        ("SRV01", "Windows", "Logs", "WindowsUpdate.log"),
        ("SRV01", "a.log"),
        ("SRV02", "b.log"),
        ("loose.log",),
    ]
    assert all(u.root == root for u in units)
    got = files(scan_paths(root))
    assert got["SRV01/Windows/Logs/WindowsUpdate.log"] == ("SRV01", WU, len(WU))
    assert got["SRV02/b.log"][0] == "SRV02"
    assert got["loose.log"][0] is None  # a file at the root names no host


def test_roots_keep_command_line_order_and_a_file_given_directly_is_its_own_root(tmp_path):
    single = write(tmp_path / "z" / "WindowsUpdate.log", WU)
    folder = tmp_path / "a"
    write(folder / "x.log", b"x\n")
    units, _ = list_units([single, folder])
    assert [(u.root, u.rel_parts) for u in units] == [(single, ("WindowsUpdate.log",)), (folder, ("x.log",))]
    assert files(scan(units[0])) == {"WindowsUpdate.log": (None, WU, len(WU))}


def test_missing_input_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        list_units([tmp_path / "nope"])


def test_fallback_host_is_the_input_folder_or_the_files_folder(tmp_path):
    root = tmp_path / "SRV07"
    write(root / "Windows" / "x.log", b"x\n")
    direct = write(tmp_path / "HOST9" / "WindowsUpdate.log", WU)
    units, _ = list_units([root, direct])
    assert [fallback_host(u) for u in units] == ["SRV07", "HOST9"]
    # "Windows" is where logs live, not a machine: the path names no host, the fallback does
    assert files(scan(units[0]))["Windows/x.log"][0] is None


def test_symlinks_are_followed_only_inside_the_root(tmp_path):
    outside = write(tmp_path / "secret" / "shadow", b"outside\n")
    root = tmp_path / "bundle"
    inner = write(root / "real" / "a.log", b"a\n")
    (root / "in.log").symlink_to(inner)
    (root / "out.log").symlink_to(outside)
    (root / "outdir").symlink_to(outside.parent, target_is_directory=True)
    (root / "dangling.log").symlink_to(root / "missing")
    (root / "real" / "loop").symlink_to(root, target_is_directory=True)
    units, probs = list_units([root])
    assert [u.rel_parts for u in units] == [("in.log",), ("real", "a.log")]
    assert {p.logical: p.reason for p in probs} == {
        "out.log": "symlink_outside",
        "outdir": "symlink_outside",
        "dangling.log": "unreadable",
        "real/loop": "special_file",
    }
    (root / "alias").symlink_to(root / "real", target_is_directory=True)  # a second name, no loop
    units, probs = list_units([root])
    assert [u.rel_parts for u in units] == [("alias", "a.log"), ("in.log",), ("real", "a.log")]
    assert "real" not in {p.logical for p in probs}
    units, probs = list_units([root], follow_symlinks_within=False)
    assert [u.rel_parts for u in units] == [("real", "a.log")]
    assert {p.reason for p in probs} == {"special_file"}


def test_sockets_and_fifos_are_problems_not_units(tmp_path):
    root = tmp_path / "bundle"
    write(root / "ok.log", b"ok\n")
    os.mkfifo(root / "pipe")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(root / "sock"))
        units, probs = list_units([root])
    finally:
        sock.close()
    assert [u.rel_parts for u in units] == [("ok.log",)]
    assert {p.logical: p.reason for p in probs} == {"pipe": "special_file", "sock": "special_file"}
    # a unit that became a fifo after listing is refused without blocking
    assert scan(Unit(root / "pipe", root, ("pipe",))) == [("problem", "pipe", "special_file")]


# ---------------------------------------------------------------- archive formats


def test_zip_members_stream_in_stored_order_with_logical_names(tmp_path):
    big = os.urandom(3 << 20)  # several read chunks
    path = write(tmp_path / "srv02.zip", zip_bytes([("b.log", b"b\n"), ("Logs/CBS/CBS.log", big), ("a.log", WU)]))
    items = scan(one(path))
    assert [i[1] for i in items] == ["srv02.zip!b.log", "srv02.zip!Logs/CBS/CBS.log", "srv02.zip!a.log"]
    got = files(items)
    assert got["srv02.zip!Logs/CBS/CBS.log"] == ("srv02", big, len(big))
    assert got["srv02.zip!a.log"] == ("srv02", WU, len(WU))


def test_tar_and_tgz_are_read_as_streams_and_named_by_stem(tmp_path):
    members = [("var/opt/microsoft/omsupdatemgmt.log", b"oms\n"), ("etc/x.conf", b"c\n")]
    plain = write(tmp_path / "lnx01.tar", tar_bytes(members))
    tgz = write(tmp_path / "web01.tar.gz", tar_bytes(members, "w:gz"))
    short = write(tmp_path / "db01.tgz", tar_bytes(members, "w:gz"))
    assert files(scan(one(plain))) == {
        "lnx01.tar!var/opt/microsoft/omsupdatemgmt.log": ("lnx01", b"oms\n", 4),
        "lnx01.tar!etc/x.conf": ("lnx01", b"c\n", 2),
    }
    assert files(scan(one(tgz)))["web01.tar.gz!var/opt/microsoft/omsupdatemgmt.log"] == ("web01", b"oms\n", 4)
    assert list(files(scan(one(short)))) == ["db01.tgz!var/opt/microsoft/omsupdatemgmt.log", "db01.tgz!etc/x.conf"]


def test_single_gz_drops_the_suffix_and_names_no_host(tmp_path):
    path = write(tmp_path / "WindowsUpdate.log.gz", gzip.compress(WU * 3))
    assert scan(one(path)) == [("file", "WindowsUpdate.log.gz!WindowsUpdate.log", None, WU * 3, None)]


def test_nested_archives_expand_in_place(tmp_path):
    inner_tgz = tar_bytes([("var/log/azure/x.log", b"t\n")], "w:gz")
    inner_zip = zip_bytes([("x.log", b"nested\n"), ("deeper.tar.gz", inner_tgz)])
    path = write(tmp_path / "bundle.zip", zip_bytes([("first.log", b"1\n"), ("SRV01.zip", inner_zip),
                                                     ("last.log", b"2\n")]))
    items = scan(one(path))
    assert [i[1] for i in items] == [
        "bundle.zip!first.log",
        "bundle.zip!SRV01.zip!x.log",
        "bundle.zip!SRV01.zip!deeper.tar.gz!var/log/azure/x.log",
        "bundle.zip!last.log",
    ]
    assert files(items)["bundle.zip!SRV01.zip!deeper.tar.gz!var/log/azure/x.log"][1] == b"t\n"


def test_gzipped_zip_gets_its_host_from_the_inner_name(tmp_path):
    path = write(tmp_path / "SRV01.zip.gz", gzip.compress(zip_bytes([("x.log", b"x\n")])))
    assert files(scan(one(path))) == {"SRV01.zip.gz!SRV01.zip!x.log": ("SRV01", b"x\n", 2)}


def test_iteration_order_is_the_same_every_time(tmp_path):
    root = tmp_path / "b"
    write(root / "z.zip", zip_bytes([("q.log", b"q"), ("a.log", b"a")]))
    write(root / "m" / "y.log", b"y")
    write(root / "a.tar", tar_bytes([("z.log", b"z"), ("b.log", b"b")]))
    first = scan_paths(root)
    assert [i[1] for i in first] == ["a.tar!z.log", "a.tar!b.log", "m/y.log", "z.zip!q.log", "z.zip!a.log"]
    assert scan_paths(root) == first


def test_a_stream_is_only_valid_until_the_next_item(tmp_path):
    path = write(tmp_path / "x.zip", zip_bytes([("a.log", b"a" * 100), ("b.log", b"b")]))
    it = iter_unit(one(path))
    _, first = next(it)
    assert first.read(10) == b"a" * 10
    next(it)
    with pytest.raises(ValueError):
        first.read()


def test_closing_a_tar_member_early_does_not_lose_the_next_one(tmp_path):
    path = write(tmp_path / "x.tgz", tar_bytes([("a.log", os.urandom(3 << 20)), ("b.log", b"b" * 10)], "w:gz"))
    it = iter_unit(one(path))
    _, first = next(it)
    first.read(100)
    first.close()
    ref, second = next(it)
    assert (ref.logical, second.read()) == ("x.tgz!b.log", b"b" * 10)


# ---------------------------------------------------------------- hosts from fleets


def test_fleet_zip_gives_each_members_top_folder(tmp_path):
    path = write(tmp_path / "fleet.zip", zip_bytes([
        ("SRV01/Windows/WindowsUpdate.log", b"w\n"),
        ("LNX01/var/opt/microsoft/omsupdatemgmt.log", b"o\n"),
        ("SRV02.zip", zip_bytes([("x.log", b"x\n")])),
        ("README.txt", b"r\n"),
    ]))
    assert {k: v[0] for k, v in files(scan(one(path))).items()} == {
        "fleet.zip!SRV01/Windows/WindowsUpdate.log": "SRV01",
        "fleet.zip!LNX01/var/opt/microsoft/omsupdatemgmt.log": "LNX01",
        "fleet.zip!SRV02.zip!x.log": "SRV02",
        "fleet.zip!README.txt": None,
    }


def test_fleet_of_archives_names_hosts_by_inner_archive(tmp_path):
    path = write(tmp_path / "fleet.zip", zip_bytes([
        ("SRV01.zip", zip_bytes([("x.log", b"1")])),
        ("SRV02.tar.gz", tar_bytes([("Logs/y.log", b"2")], "w:gz")),
    ]))
    assert {k: v[0] for k, v in files(scan(one(path))).items()} == {
        "fleet.zip!SRV01.zip!x.log": "SRV01",
        "fleet.zip!SRV02.tar.gz!Logs/y.log": "SRV02",
    }


def test_single_host_archive_with_several_os_folders_is_not_a_fleet(tmp_path):
    path = write(tmp_path / "srv03.zip", zip_bytes([
        ("Windows/Logs/CBS/CBS.log", b"c\n"),
        ("ProgramData/x.log", b"p\n"),
        ("WindowsUpdate.log", WU),
    ]))
    assert {v[0] for v in files(scan(one(path))).values()} == {"srv03"}


def test_fleet_tgz_is_told_apart_by_a_first_pass_over_names(tmp_path):
    fleet = write(tmp_path / "fleet.tar.gz", tar_bytes([("SRV01/a.log", b"a"), ("LNX01/b.log", b"b")], "w:gz"))
    single = write(tmp_path / "web01.tgz", tar_bytes([("var/a.log", b"a"), ("etc/b.log", b"b")], "w:gz"))
    assert [v[0] for v in files(scan(one(fleet))).values()] == ["SRV01", "LNX01"]
    assert [v[0] for v in files(scan(one(single))).values()] == ["web01", "web01"]


def test_folder_host_wins_over_archive_names_below_it(tmp_path):
    root = tmp_path / "in"
    write(root / "SRV09" / "fleet.zip", zip_bytes([("A1/x.log", b"x"), ("B2/y.log", b"y")]))
    assert {v[0] for v in files(scan_paths(root)).values()} == {"SRV09"}


# ---------------------------------------------------------------- hostile names and entries


def test_absolute_and_climbing_member_names_are_refused(tmp_path):
    path = write(tmp_path / "evil.zip", zip_bytes([
        ("../../escape.log", b"e"), ("/etc/x", b"e"), ("C:\\Windows\\x", b"e"), ("\\\\server\\share\\x", b"e"),
        ("a/../../b.log", b"e"), ("ok.log", b"ok"),
    ]))
    items = scan(one(path))
    assert problems(items) == {
        "evil.zip!../../escape.log": "path_traversal",
        "evil.zip!/etc/x": "absolute_path",
        "evil.zip!C:\\Windows\\x": "absolute_path",
        "evil.zip!\\\\server\\share\\x": "absolute_path",
        "evil.zip!a/../../b.log": "path_traversal",
    }
    assert list(files(items)) == ["evil.zip!ok.log"]
    tpath = write(tmp_path / "evil.tar", tar_bytes([("../up.log", b"u"), ("/abs.log", b"a"), ("fine.log", b"f")]))
    titems = scan(one(tpath))
    assert problems(titems) == {"evil.tar!../up.log": "path_traversal", "evil.tar!/abs.log": "absolute_path"}
    assert files(titems)["evil.tar!fine.log"][1] == b"f"


def test_tar_links_and_devices_are_not_followed(tmp_path):
    def entry(name: str, kind: bytes, link: str = "") -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.type, info.linkname = kind, link
        return info

    path = write(tmp_path / "links.tar", tar_bytes([
        ("real.log", b"real"),
        (entry("out", tarfile.SYMTYPE, "/etc/passwd"), b""),
        (entry("up", tarfile.SYMTYPE, "../../etc/shadow"), b""),
        (entry("near", tarfile.SYMTYPE, "real.log"), b""),
        (entry("hard", tarfile.LNKTYPE, "real.log"), b""),
        (entry("dev", tarfile.CHRTYPE), b""),
        (entry("fifo", tarfile.FIFOTYPE), b""),
    ]))
    items = scan(one(path))
    assert problems(items) == {
        "links.tar!out": "symlink_outside",
        "links.tar!up": "symlink_outside",
        "links.tar!near": "special_file",
        "links.tar!hard": "special_file",
        "links.tar!dev": "special_file",
        "links.tar!fifo": "special_file",
    }
    assert list(files(items)) == ["links.tar!real.log"]


def test_zip_symlink_entries_are_not_read(tmp_path):
    link = zipfile.ZipInfo("etc-link")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    path = write(tmp_path / "l.zip", zip_bytes([(link, b"/etc/passwd"), ("ok.log", b"ok")]))
    items = scan(one(path))
    assert problems(items) == {"l.zip!etc-link": "special_file"}
    assert list(files(items)) == ["l.zip!ok.log"]


def _set_encrypted_flag(data: bytes, name: bytes) -> bytes:
    """Mark a member encrypted in its local and central headers, as a password-protected zip does."""
    out = bytearray(data)
    for sig, flag_at, name_at in ((b"PK\x03\x04", 6, 30), (b"PK\x01\x02", 8, 46)):
        pos = out.find(sig)
        while pos >= 0:
            if out[pos + name_at : pos + name_at + len(name)] == name:
                (flags,) = struct.unpack_from("<H", out, pos + flag_at)
                struct.pack_into("<H", out, pos + flag_at, flags | 1)
            pos = out.find(sig, pos + 4)
    return bytes(out)


def test_encrypted_members_are_reported_and_others_still_read(tmp_path):
    data = _set_encrypted_flag(zip_bytes([("secret.log", b"s" * 50), ("ok.log", b"ok")]), b"secret.log")
    items = scan(one(write(tmp_path / "enc.zip", data)))
    assert problems(items) == {"enc.zip!secret.log": "encrypted"}
    assert files(items)["enc.zip!ok.log"][1] == b"ok"


# ---------------------------------------------------------------- bombs and limits


def test_declared_ratio_over_the_limit_is_a_zip_bomb(tmp_path):
    path = write(tmp_path / "bomb.zip", zip_bytes([("zeros.log", bytes(4 << 20)), ("ok.log", b"ok")]))
    items = scan(one(path), Limits(max_ratio=100))
    assert problems(items) == {"bomb.zip!zeros.log": "zip_bomb"}
    assert files(items)["bomb.zip!ok.log"][1] == b"ok"
    assert len(files(scan(one(path), Limits(max_ratio=5000)))) == 2


def _patch_central(data: bytes, name: bytes, field_at: int, value: int) -> bytes:
    """Rewrite one 32-bit field of a member's central-directory entry, as a forged zip would."""
    out = bytearray(data)
    pos = out.find(b"PK\x01\x02")
    while pos >= 0:
        if out[pos + 46 : pos + 46 + len(name)] == name:
            struct.pack_into("<I", out, pos + field_at, value)
        pos = out.find(b"PK\x01\x02", pos + 4)
    return bytes(out)


def test_zip_headers_that_lie_let_no_more_through_than_they_declare(tmp_path):
    real = bytes(8 << 20)
    data = zip_bytes([("ok.log", b"ok"), ("zeros.log", real), ("after.log", b"a")])
    small = _patch_central(data, b"zeros.log", 24, 1000)  # claims 1000 bytes uncompressed
    items = scan(one(write(tmp_path / "liar.zip", small)), Limits(max_ratio=100))
    assert problems(items) == {"liar.zip!zeros.log": "corrupt_archive"}  # cut at 1000 bytes: bad CRC
    assert {k: v[1] for k, v in files(items).items()} == {"liar.zip!ok.log": b"ok", "liar.zip!after.log": b"a"}

    data = zip_bytes([("first.log", b"f" * 100), ("after.log", b"a" * 100)])
    big = _patch_central(data, b"after.log", 20, 10 << 20)  # claims more compressed bytes than exist
    items = scan(one(write(tmp_path / "liar2.zip", big)))
    assert problems(items) == {}  # the reader stops at the declared output size, CRC intact
    assert {k: v[1] for k, v in files(items).items()} == {
        "liar2.zip!first.log": b"f" * 100, "liar2.zip!after.log": b"a" * 100,
    }


def test_a_stream_that_fails_is_followed_by_its_problem(tmp_path):
    # a gzip declares no size: only the reading can tell it is a bomb
    bomb = gzip.compress(bytes(8 << 20))
    path = write(tmp_path / "b.zip", zip_bytes([("zeros.log.gz", bomb), ("after.log", b"a")], zipfile.ZIP_STORED))
    it = iter_unit(one(path), Limits(max_ratio=100))
    ref, stream = next(it)
    assert ref.logical == "b.zip!zeros.log.gz!zeros.log"
    got = 0
    with pytest.raises(LimitExceeded) as caught:
        while chunk := stream.read(1 << 16):
            got += len(chunk)
    assert got <= 100 * len(bomb) + (2 << 20)
    problem = next(it)
    assert problem == caught.value.problem  # iter_unit yields it: the caller does not record it
    assert (problem.logical, problem.reason) == ("b.zip!zeros.log.gz!zeros.log", "zip_bomb")
    ref, stream = next(it)
    assert (ref.logical, stream.read()) == ("b.zip!after.log", b"a")
    assert list(it) == []


def test_gzip_and_tgz_bombs_stop_while_reading(tmp_path):
    gz = write(tmp_path / "big.log.gz", gzip.compress(bytes(8 << 20)))
    tgz = write(tmp_path / "b.tar.gz", tar_bytes([("zeros.log", bytes(8 << 20)), ("after.log", b"a")], "w:gz"))
    assert scan(one(gz), Limits(max_ratio=100)) == [
        ("file", "big.log.gz!big.log", None, None, None),
        ("problem", "big.log.gz!big.log", "zip_bomb"),
    ]
    items = scan(one(tgz), Limits(max_ratio=100))
    assert problems(items) == {"b.tar.gz!zeros.log": "zip_bomb"}
    assert "b.tar.gz!after.log" not in files(items)  # a stream cannot skip a bomb without inflating it


def test_bomb_is_caught_even_when_nobody_reads_the_tar_member(tmp_path):
    tgz = write(tmp_path / "b.tgz", tar_bytes([("zeros.log", bytes(8 << 20))], "w:gz"))
    it = iter_unit(one(tgz), Limits(max_ratio=100))
    next(it)  # not read: iter_unit drains it through the same limits
    assert [p.reason for p in it] == ["zip_bomb"]


def test_member_and_total_byte_limits(tmp_path):
    path = write(tmp_path / "m.zip", zip_bytes([("big.log", b"x" * 5000), ("small.log", b"s" * 10)]))
    items = scan(one(path), Limits(max_member_bytes=1000))
    assert problems(items) == {"m.zip!big.log": "too_large"}
    assert files(items)["m.zip!small.log"][1] == b"s" * 10

    tpath = write(tmp_path / "m.tar", tar_bytes([("big.log", b"x" * 5000), ("small.log", b"s" * 10)]))
    titems = scan(one(tpath), Limits(max_member_bytes=1000))
    assert problems(titems) == {"m.tar!big.log": "too_large"}
    assert files(titems)["m.tar!small.log"][1] == b"s" * 10

    many = write(tmp_path / "t.zip", zip_bytes([(f"f{i}.log", os.urandom(4000)) for i in range(5)]))
    titems = scan(one(many), Limits(max_total_bytes=10_000))
    assert [i[0] for i in titems] == ["file", "file", "file", "problem"]  # the unit stops at the budget
    assert titems[-1][2] == "too_large"


def test_too_many_members(tmp_path):
    z = write(tmp_path / "n.zip", zip_bytes([(f"f{i}.log", b"x") for i in range(5)]))
    assert scan(one(z), Limits(max_members=3)) == [("problem", "n.zip", "too_many_members")]
    t = write(tmp_path / "n.tar", tar_bytes([(f"f{i}.log", b"x") for i in range(5)]))
    items = scan(one(t), Limits(max_members=3))
    assert [i[0] for i in items] == ["file"] * 3 + ["problem"]
    assert items[-1][1:] == ("n.tar!f3.log", "too_many_members")


def test_nesting_deeper_than_max_depth_is_refused(tmp_path):
    c = zip_bytes([("x.log", b"deep")])
    b = zip_bytes([("c.zip", c), ("b.log", b"b")])
    path = write(tmp_path / "a.zip", zip_bytes([("b.zip", b)]))
    items = scan(one(path), Limits(max_depth=2))
    assert problems(items) == {"a.zip!b.zip!c.zip": "too_deep"}
    assert list(files(items)) == ["a.zip!b.zip!b.log"]
    assert "a.zip!b.zip!c.zip!x.log" in files(scan(one(path)))  # default depth 4


def test_overlapping_zip_entries_are_refused(tmp_path):
    data = bytearray(zip_bytes([("a.log", b"a" * 100), ("b.log", b"b" * 100)]))
    second = data.find(b"PK\x01\x02", data.find(b"PK\x01\x02") + 4)
    struct.pack_into("<I", data, second + 42, 0)  # b.log's data now claims to start where a.log's does
    assert scan(one(write(tmp_path / "o.zip", bytes(data)))) == [("problem", "o.zip", "zip_bomb")]


def test_huge_tar_header_data_is_refused_not_buffered(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        info = tarfile.TarInfo("x.log")
        info.pax_headers = {"comment": "c" * (17 << 20)}
        info.size = 1
        tf.addfile(info, io.BytesIO(b"x"))
    items = scan(one(write(tmp_path / "pax.tar", buf.getvalue())))
    assert items == [("problem", "pax.tar", "corrupt_archive")]


# ---------------------------------------------------------------- damaged archives


def test_truncated_archives_are_reported_and_other_units_still_scan(tmp_path):
    root = tmp_path / "b"
    payload = [(f"f{i}.log", os.urandom(20_000)) for i in range(4)]
    for name, data in (
        ("cut.zip", zip_bytes(payload)),
        ("cut.tar", tar_bytes(payload)),
        ("cut.tar.gz", tar_bytes(payload, "w:gz")),
        ("cut.log.gz", gzip.compress(os.urandom(50_000))),
    ):
        write(root / name, data[: len(data) // 2])
    write(root / "good.log", WU)
    items = scan_paths(root)
    assert files(items)["good.log"][1] == WU
    probs = problems(items)

    def under(unit: str) -> set[str]:
        return {r for k, r in probs.items() if k == unit or k.startswith(unit + "!")}

    assert probs["cut.zip"] == "truncated_archive"
    assert under("cut.tar") == {"truncated_archive"}
    assert under("cut.tar.gz") == {"truncated_archive"}
    assert probs["cut.log.gz!cut.log"] == "truncated_archive"
    # members before the cut were still delivered whole
    assert files(items)["cut.tar!f0.log"][1] == payload[0][1]


def test_tar_cut_at_a_member_boundary_is_still_reported(tmp_path):
    data = tar_bytes([("a.log", b"a" * 512), ("b.log", b"b" * 512)])
    cut = write(tmp_path / "cut.tar", data[: 512 * 2])  # a.log whole, nothing after it
    items = scan(one(cut))
    assert files(items)["cut.tar!a.log"][1] == b"a" * 512
    assert problems(items) == {"cut.tar": "truncated_archive"}


def test_corrupt_member_data_is_reported_and_the_zip_walk_continues(tmp_path):
    data = bytearray(zip_bytes([("bad.log", os.urandom(5000)), ("ok.log", b"ok")], zipfile.ZIP_STORED))
    start = 30 + len("bad.log")
    for i in range(start + 100, start + 400):
        data[i] ^= 0xFF
    items = scan(one(write(tmp_path / "c.zip", bytes(data))))
    assert problems(items) == {"c.zip!bad.log": "corrupt_archive"}
    assert files(items)["c.zip!ok.log"][1] == b"ok"


def test_archive_name_without_archive_content_is_corrupt(tmp_path):
    root = tmp_path / "b"
    write(root / "empty.zip", b"")
    write(root / "fake.tar.gz", b"just text\n")
    write(root / "inner.zip", zip_bytes([("also-fake.gz", b"plain")]))
    assert problems(scan_paths(root)) == {
        "empty.zip": "corrupt_archive",
        "fake.tar.gz": "corrupt_archive",
        "inner.zip!also-fake.gz": "corrupt_archive",
    }


# ---------------------------------------------------------------- the whole hostile bundle


def test_mixed_bundle_still_yields_the_good_file_and_writes_nothing(tmp_path, monkeypatch):
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)  # a careless extractor would write "../escape.log" next to it
    link = zipfile.ZipInfo("link")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    members = [
        ("../escape.log", b"e"), ("/etc/cron.d/x", b"e"), ("C:\\x.log", b"e"), (link, b"/etc/passwd"),
        ("secret.log", b"s" * 64), ("zeros.log", bytes(4 << 20)),
        ("deep.zip", zip_bytes([("d.zip", zip_bytes([("z.log", b"z")]))])),
        ("torn.tar.gz", tar_bytes([("x.log", os.urandom(30_000))], "w:gz")[:2000]),
        ("SRV01/WindowsUpdate.log", WU * 1000),
        ("huge.log", os.urandom(3 << 20)),
    ]
    data = _set_encrypted_flag(zip_bytes(members), b"secret.log")
    bundle = write(tmp_path / "in" / "SRV01.zip", data)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    items = scan_paths(bundle.parent, limits=Limits(max_ratio=100, max_depth=2, max_member_bytes=2 << 20))
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    found = files(items)
    # the torn member is handed out for what can be read before its damage (issue #15): a whole read fails
    assert found.pop("SRV01.zip!torn.tar.gz!x.log", ("torn", None))[1] is None
    assert found == {"SRV01.zip!SRV01/WindowsUpdate.log": ("SRV01", WU * 1000, len(WU) * 1000)}
    assert problems(items) == {
        "SRV01.zip!../escape.log": "path_traversal",
        "SRV01.zip!/etc/cron.d/x": "absolute_path",
        "SRV01.zip!C:\\x.log": "absolute_path",
        "SRV01.zip!link": "special_file",
        "SRV01.zip!secret.log": "encrypted",
        "SRV01.zip!zeros.log": "zip_bomb",
        "SRV01.zip!deep.zip!d.zip": "too_deep",
        "SRV01.zip!torn.tar.gz!x.log": "truncated_archive",
        "SRV01.zip!huge.log": "too_large",
    }


@pytest.mark.parametrize(
    "computer",
    [None, "SRV01", "srv01.contoso.local", "  Web02.Fabrikam.COM  ", "10.0.0.12", "10.0.0.12.example", "", "   ",
     ".hidden", "ÅSA-PC.corp", "DC01.", "Ünïcode.Σ"],
)
def test_host_value_is_host_expr_for_one_value(computer: str | None) -> None:
    # the scalar twin used once per source must name hosts exactly as the vectorised one does
    import polars as pl
    from umtriage.pipeline.hosts import host_expr, host_value

    expected = pl.select(host_expr(pl.lit(computer, dtype=pl.String), "from-path")).item()
    assert host_value(computer, "from-path") == expected


def test_a_plain_file_is_read_up_to_the_size_it_had_when_opened(tmp_path: Path) -> None:
    """A log a live process keeps appending to cannot keep a batch scan reading: the stream ends
    where the file ended when the walk opened it, and seeking and fileno are the file's."""
    path = tmp_path / "SRV01" / "WindowsUpdate.log"
    path.parent.mkdir()
    path.write_bytes(b"line one\nline two\n")
    units, _ = list_units([tmp_path])
    walk = iter_unit(units[0])
    ref, stream = next(walk)  # valid until the next item is asked for
    with path.open("ab") as f:
        f.write(b"appended after the open\n" * 1000)
    assert ref.size == 18
    assert stream.read() == b"line one\nline two\n" and stream.read(10) == b""
    stream.seek(5)
    assert stream.tell() == 5 and stream.read(100) == b"one\nline two\n" and stream.read1(100) == b""
    assert os.fstat(stream.fileno()).st_size == 18 + 24 * 1000
    assert list(walk) == []
