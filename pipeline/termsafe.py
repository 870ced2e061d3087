"""Text from logs made safe to print: no control character reaches the terminal raw.

Host names, messages, titles and file names come from machines we do not trust. An ESC in any
of them could retitle the terminal (`ESC ] 0 ; ... BEL`), make text blink, move the cursor or,
on some terminals, write to the clipboard. Every C0 and C1 control character, DEL, and the
Unicode bidirectional overrides are shown as visible escapes (`\\x1b`, `\\u202e`) instead.
Newlines and tabs are escaped as well unless the caller keeps them (`keep_newlines`), so one
value stays on one line. Rich markup in such text (`[red]`) is not interpreted either: `cell()`
gives a rich Text that is printed as it stands.
"""

from __future__ import annotations

_BIDI = (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C)
_CONTROLS = (*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0))


def _escape(cp: int) -> str:
    return f"\\x{cp:02x}" if cp < 0x100 else f"\\u{cp:04x}"


_TABLE = {cp: _escape(cp) for cp in (*_CONTROLS, *_BIDI)}
_TABLE_KEEP_NL = {cp: v for cp, v in _TABLE.items() if cp not in (0x0A, 0x09)}


def safe(text: object, *, keep_newlines: bool = False) -> str:
    """`text` as a string with every control character written as a visible escape."""
    s = text if isinstance(text, str) else str(text)
    return s.translate(_TABLE_KEEP_NL if keep_newlines else _TABLE)


def cell(text: object):
    """A rich Text of `safe(text)`: printed literally, markup and all."""
    from rich.text import Text

    return Text(safe(text))
