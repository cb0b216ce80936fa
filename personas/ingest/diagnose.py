"""Why the engine refused a file: the line, the column and what to change, in one sentence.

DuckDB's CSV errors do not always name the right line, so when it refuses a file we re-read the
file in Python (:func:`diagnose_text`) and say which line and column are at fault (bytes not
in the declared encoding, a line over ``max_line_bytes``, a field count off the header and the
delimiter the line seems to use, a truncated compressed file) and what to change. That scan
runs only on failure, so the fast path stays fast.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

from personas.errors import SourceError
from personas.ingest.files import BROKEN, codec, open_binary
from personas.ingest.mapping import Source
from personas.ingest.personal import personal_name
from personas.sqltext import first_line


def diagnose_files(paths: list[Path], source: Source, engine_message: str = "") -> SourceError:
    """The most specific error among ``paths`` (the file DuckDB names, else each in turn)."""
    named = [p for p in paths if str(p) in engine_message or p.name in engine_message]
    generic = None
    for p in [*named, *[p for p in paths if p not in named]]:
        err = diagnose_text(p, source, engine_message, specific_only=True)
        if err is not None:
            return err
        generic = generic or p
    target = named[0] if named else (paths[0] if len(paths) == 1 else None)
    if target is not None:
        return diagnose_text(target, source, engine_message)  # type: ignore[return-value]
    return SourceError(
        f"{paths[0].name} .. {paths[-1].name}: cannot be read as "
        f"{source.format or 'csv'}: {first_line(engine_message)}"
    )


def diagnose_text(
    path: Path, source: Source, engine_message: str = "", specific_only: bool = False
) -> SourceError:
    """Re-read a delimited file that the engine refused and explain what is wrong, where."""
    enc = codec(source.encoding)
    fmt = source.format_for(path)
    sep = source.sep(path) if fmt != "text" else None
    header: list[str] | None = None
    n_fields = None
    line_no = 0
    in_quote = False
    try:
        with open_binary(path) as fh:
            line_enc = "utf-8" if enc.startswith(("utf-16", "utf-32")) else enc
            for line_no, raw in enumerate(_lines(fh, enc), start=1):
                if len(raw) > source.max_line_bytes:
                    col = _widest_field(raw, sep, header)
                    return SourceError(
                        f"{path.name} line {line_no}: the line is {len(raw):,} bytes long, over "
                        f"the limit of {source.max_line_bytes:,} (max_line_bytes){col}. If the "
                        "value is real, raise max_line_bytes: in source "
                        f"{source.name!r}; otherwise look for an unclosed quote before this line."
                    )
                try:
                    text = raw.decode(line_enc)
                except UnicodeDecodeError as e:
                    col = _field_at(raw, e.start, sep, header)
                    bad = raw[max(0, e.start - 8) : e.end + 8]
                    in_header = header is None and source.header
                    if not in_header and _personal_field(raw, e.start, sep, header, source):
                        # never show a fragment of a personal value: letters and digits masked
                        bad = bytes(b"*"[0] if chr(c).isalnum() else c for c in bad)
                    return SourceError(
                        f"{path.name} line {line_no}{col}: bytes {raw[e.start : e.end]!r} (in "
                        f"{bad!r}) are not valid {source.encoding}. The file mixes encodings or "
                        f"is not {source.encoding}: set encoding: (e.g. latin-1 or cp1252) in "
                        f"source {source.name!r}, or re-export the file as UTF-8."
                    )
                if fmt == "text" or in_quote:
                    in_quote = in_quote and text.count(source.quote) % 2 == 0
                    continue
                text = text.lstrip("\ufeff")
                if text.count(source.quote) % 2 == 1:
                    in_quote = True  # a quoted field runs over the line end; skip the check
                    continue
                fields = next(
                    csv.reader([text.rstrip("\r\n")], delimiter=sep or ",", quotechar=source.quote),
                    [],
                )
                if header is None and source.header:
                    header = fields
                    n_fields = len(source.column_names or fields)
                    continue
                if n_fields is None:
                    n_fields = len(source.column_names or fields)
                if fields and len(fields) != n_fields:
                    extra = (
                        f"; the line looks {_guess_sep(text, sep)!r}-delimited"
                        if _guess_sep(text, sep)
                        else ""
                    )
                    return SourceError(
                        f"{path.name} line {line_no}: {len(fields)} fields where the header has "
                        f"{n_fields}{extra}; check delimiter: {sep!r} and quote: in source "
                        f"{source.name!r}, or fix that line (a value with the delimiter in it "
                        "must be quoted)."
                    )
    except BROKEN as e:
        return SourceError(
            f"{path.name}: the compressed file is truncated or corrupt after line {line_no:,} "
            f"({type(e).__name__}: {e}). Re-download or re-export it; nothing was ingested "
            "from it."
        )
    if specific_only:
        return None  # type: ignore[return-value]
    return SourceError(
        f"{path.name}: cannot be read as {fmt}: {first_line(engine_message)}. "
        f"Check format:, delimiter: and quote: in source {source.name!r}."
    )


def diagnose_json(path: Path, source: Source, engine_message: str) -> SourceError:
    """Name the first line of a JSON-lines file that is not a JSON object."""
    import json

    with open_binary(path) as fh:
        for line_no, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                return SourceError(
                    f"{path.name} line {line_no}, column {getattr(e, 'colno', '?')}: not valid "
                    f"JSON ({e}); each line must be one JSON object. Fix that line or set "
                    f"format: in source {source.name!r}."
                )
            if not isinstance(obj, dict):
                return SourceError(
                    f"{path.name} line {line_no}: a JSON {type(obj).__name__}, not an object; "
                    "each line must be one JSON object with the source columns as keys."
                )
    return SourceError(f"{path.name}: not valid JSON lines: {first_line(engine_message)}")


def _lines(fh: io.BufferedIOBase, enc: str) -> Iterator[bytes]:
    """Raw lines; for UTF-16/32 split on the encoded newline, not on a 0x0A byte."""
    if not enc.startswith(("utf-16", "utf-32")):
        yield from fh
        return
    data = fh.read()
    text = data.decode(enc, errors="replace")
    for line in text.splitlines(keepends=True):
        yield line.encode("utf-8")


def _guess_sep(text: str, sep: str | None) -> str | None:
    counts = {d: text.count(d) for d in (",", ";", "\t", "|") if d != sep}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] >= 2 else None


def _field_at(raw: bytes, offset: int, sep: str | None, header: list[str] | None) -> str:
    if sep is None:
        return ""
    idx = raw[:offset].count(sep.encode("utf-8"))
    name = header[idx] if header and idx < len(header) else f"field {idx + 1}"
    return f", column {name!r}"


def _personal_field(
    raw: bytes, offset: int, sep: str | None, header: list[str] | None, source: Source
) -> bool:
    """Whether the byte at ``offset`` lies in a column declared or named as personal."""
    if sep is None or not header:
        return True  # no column to judge by: assume the worst
    idx = raw[:offset].count(sep.encode("utf-8"))
    if idx >= len(header):
        return True
    name = header[idx]
    if name in source.not_personal:
        return False
    return name in source.declared_personal() or personal_name(name) is not None


def _widest_field(raw: bytes, sep: str | None, header: list[str] | None) -> str:
    parts = raw.split(sep.encode("utf-8")) if sep else raw.split()
    if not parts:
        return ""
    i = max(range(len(parts)), key=lambda j: len(parts[j]))
    name = header[i] if header and i < len(header) else f"field {i + 1}"
    return f"; column {name!r} holds {len(parts[i]):,} bytes"
