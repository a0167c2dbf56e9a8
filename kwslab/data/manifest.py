"""The manifest: one CSV schema for every data source (TTS builder, preparers, users' own files).

Columns (header required; only ``filename`` must be present, the others are optional):

========== ==========================================================================
filename   audio path, relative to the manifest's folder or absolute
keyword    class label for keyword classification (``_silence_``, ``_unknown_`` allowed)
transcript text for CTC training
speaker    speaker id (used for speaker-disjoint splits)
voice      TTS voice / recording condition
duration   seconds (filled from the WAV header when empty and audio is checked)
split      ``train``, ``val`` or ``test`` (or empty)
========== ==========================================================================

:func:`read_manifest` checks everything up front and raises a single :class:`ManifestError` listing
every problem with its row number; :func:`write_manifest` writes atomically.

The guarantee (issue 18): a manifest that reads with ``check_audio`` (the default) holds no clip that will fail
later. Every row's audio is checked by :func:`kwslab.audio.check_wav`: a regular file (a directory, FIFO or
device is named as such; a FIFO is never opened), a valid header with at least one frame, and, for float WAVs,
finite samples (read once; PCM cannot hold NaN/Inf, so for PCM the header is the whole check and stays cheap).
So ``fit`` and ``evaluate`` stop before any work with every bad row listed, never mid-epoch. The same file listed
twice is a :class:`ManifestWarning` when the rows agree and a problem naming both rows when they label it two
ways. Messages name the file and row but never quote a file's contents (a ``.env`` passed as audio stays
private).
"""

from __future__ import annotations

import csv
import difflib
import io
import math
import os
import re
import warnings
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, Sequence

from kwslab.files import atomic_write_text  # re-exported: tts and the preparers write through it

if TYPE_CHECKING:
    from kwslab.text import CharVocab

__all__ = [
    "MANIFEST_COLUMNS",
    "SPLITS",
    "SILENCE_LABEL",
    "UNKNOWN_LABEL",
    "MAX_DURATION_S",
    "ManifestError",
    "ManifestWarning",
    "ManifestRow",
    "read_manifest",
    "write_manifest",
    "split_rows",
    "atomic_write_text",
]

MANIFEST_COLUMNS: tuple[str, ...] = ("filename", "keyword", "transcript", "speaker", "voice", "duration", "split")
SPLITS: tuple[str, ...] = ("train", "val", "test")
SILENCE_LABEL = "_silence_"  # keyword of background-only clips; their transcript may be empty
UNKNOWN_LABEL = "_unknown_"  # keyword of "any other word" clips
MAX_DURATION_S = 3600.0  # longer than this is treated as a broken duration value
MAX_LISTED = 50  # problems listed in one ManifestError before "... and N more"


class ManifestError(ValueError):
    """A manifest cannot be used; ``problems`` holds one line per problem (with its row number)."""

    def __init__(self, path: str | os.PathLike[str], problems: Sequence[str]) -> None:
        self.path = Path(path)
        self.problems = list(problems)
        shown = self.problems[:MAX_LISTED]
        lines = [f"manifest {self.path}: {len(self.problems)} problem(s):"]
        lines += [f"  - {p}" for p in shown]
        if len(self.problems) > len(shown):
            lines.append(f"  ... and {len(self.problems) - len(shown)} more")
        super().__init__("\n".join(lines))


class ManifestWarning(UserWarning):
    """A manifest that can be used but probably holds a mistake (a row repeated word for word)."""


@dataclass(frozen=True)
class ManifestRow:
    """One utterance. ``path`` is the absolute audio path; ``filename`` is as written in the CSV."""

    filename: str
    keyword: str = ""
    transcript: str = ""
    speaker: str = ""
    voice: str = ""
    duration: float | None = None
    split: str = ""
    path: Path = Path()

    def to_dict(self) -> dict[str, object]:
        """The CSV columns as a dict (``path`` left out)."""
        return {c: getattr(self, c) for c in MANIFEST_COLUMNS}


def _suggest(name: str, choices: Sequence[str]) -> str:
    low = {c.lower(): c for c in choices}
    if name.lower() in low:
        return f"; did you mean {low[name.lower()]!r}?"
    close = difflib.get_close_matches(name.lower(), list(choices), n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else ""


def _parse_duration(value: str) -> tuple[float | None, str | None]:
    """Return (duration, problem)."""
    if value == "":
        return None, None
    try:
        d = float(value)
    except ValueError:
        return None, f"duration {value!r} is not a number of seconds"
    if not math.isfinite(d):
        return None, f"duration {value!r} is not finite"
    if d <= 0:
        return None, f"duration {value!r} must be > 0 seconds"
    if d > MAX_DURATION_S:
        return None, f"duration {value!r} is over {MAX_DURATION_S:.0f} s; is it in samples or ms rather than seconds?"
    return d, None


def _read_text(path: Path) -> str:
    if not path.exists():
        raise ManifestError(path, ["file not found; check the path (run a preparer to create manifests)"])
    if path.is_dir():
        raise ManifestError(path, ["is a folder, not a CSV file; point at e.g. train.csv inside it"])
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise ManifestError(path, [f"not UTF-8 text ({e}); save the CSV as UTF-8"]) from None
    except OSError as e:
        raise ManifestError(path, [f"cannot read file: {e}"]) from None


def read_manifest(
    path: str | os.PathLike[str],
    *,
    need_keyword: bool = False,
    need_transcript: bool = False,
    vocab: "CharVocab | None" = None,
    check_audio: bool = True,
) -> list[ManifestRow]:
    """Read and validate a manifest CSV.

    Args:
        path: The CSV file.
        need_keyword: Every row must have a non-empty ``keyword`` (classification).
        need_transcript: Every row must have a non-empty ``transcript`` (CTC), except ``_silence_`` rows.
        vocab: When given, every transcript, after ``vocab.normalize``, must only use its characters.
        check_audio: Check that every audio file exists and has a readable WAV header; an empty
            ``duration`` is then filled from the header.

    Returns:
        The rows, in file order (blank lines skipped). A header-only file gives ``[]``.

    Raises:
        ManifestError: listing every problem found (missing/extra columns, missing or unreadable audio,
            empty keyword/transcript where needed, characters outside ``vocab``, bad durations).
    """
    path = Path(path)
    reader, header = _open_csv(path)
    problems = _header_problems(path, header, need_keyword, need_transcript)
    if problems:
        raise ManifestError(path, problems)
    folder = path.parent.absolute()
    rows: list[ManifestRow] = []
    wheres: list[str] = []
    for where, record in _records(reader, problems):
        if len(record) != len(header):
            problems.append(f"{where}: has {len(record)} fields but the header has {len(header)}; "
                            "quote values that contain commas")
            continue
        values = {c: "" for c in MANIFEST_COLUMNS}
        values.update({h: v.strip() for h, v in zip(header, record)})
        row, row_problems = _parse_row(values, folder, need_keyword=need_keyword, need_transcript=need_transcript,
                                       vocab=vocab, check_audio=check_audio)
        if row is None:
            where_f = f"{where} {values['filename']!r}" if values["filename"] else where
            problems.extend(f"{where_f}: {p}" for p in row_problems)
        else:
            rows.append(row)
            wheres.append(where)
    problems.extend(_duplicate_problems(path, rows, wheres))
    if problems:
        raise ManifestError(path, problems)
    return rows


def _open_csv(path: Path) -> tuple[Any, list[str]]:
    """A ``csv.reader`` over the file, past its header, and the header's column names (stripped)."""
    text = _read_text(path)
    if not text.strip():
        raise ManifestError(path, ["file is empty; the first line must be a header such as "
                                   + ",".join(MANIFEST_COLUMNS)])
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader)]
    except csv.Error as e:
        raise ManifestError(path, [f"line 1: CSV syntax error: {e}"]) from None
    return reader, header


def _header_problems(path: Path, header: list[str], need_keyword: bool, need_transcript: bool) -> list[str]:
    """What is wrong with the header; raises at once when the first line is data, not a header."""
    problems: list[str] = []
    seen: set[str] = set()
    for name in header:
        if name in seen:
            problems.append(f"header: column {name!r} appears more than once")
        seen.add(name)
    unknown = [h for h in header if h not in MANIFEST_COLUMNS]
    if "filename" not in header and len(unknown) == len(header) and any(Path(h).suffix for h in header):
        # The first line looks like data (it names a file): the header row is missing.
        raise ManifestError(path, [f"line 1: no header row (its {len(header)} field(s) look like data); add a first "
                                   f"line such as '{','.join(MANIFEST_COLUMNS)}' naming the columns"])
    if "filename" not in header:
        found = ", ".join(_column_label(h) for h in header)
        problems.append(f"header: required column 'filename' is missing (found {found})")
    for name in unknown:
        label = _column_label(name)
        problems.append(f"header: unknown column {label}{_suggest(name, MANIFEST_COLUMNS)} "
                        f"(valid columns: {', '.join(MANIFEST_COLUMNS)})")
    if need_keyword and "keyword" not in header:
        problems.append("header: column 'keyword' is needed (keyword classification) but missing")
    if need_transcript and "transcript" not in header:
        problems.append("header: column 'transcript' is needed (CTC training) but missing")
    return problems


_COLUMN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_ .-]{0,39}")


def _column_label(name: str) -> str:
    """A header field for a message: quoted when it looks like a column name, else described (the "header" may
    be the first line of a .env or config file holding a secret)."""
    if not name:
        return "(empty name)"
    if _COLUMN_NAME.fullmatch(name):
        return repr(name)
    return f"(a {len(name)}-character field that is not a column name; not shown)"


def _records(reader: Any, problems: list[str]) -> Iterator[tuple[str, list[str]]]:
    """``(where, fields)`` of each non-blank data line (``where``: row and line number); a CSV syntax error is
    added to ``problems`` and ends the file."""
    row_no = 0
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            problems.append(f"line {reader.line_num}: CSV syntax error: {e}")
            return
        if not record or all(not f.strip() for f in record):
            continue
        row_no += 1
        yield f"row {row_no} (line {reader.line_num})", record


def _parse_row(values: dict[str, str], folder: Path, *, need_keyword: bool, need_transcript: bool,
               vocab: "CharVocab | None", check_audio: bool) -> tuple[ManifestRow | None, list[str]]:
    """One row's values (every column, stripped) -> ``(row, [])``, or ``(None, problems)``."""
    fname = values["filename"]
    problems: list[str] = []
    if not fname:
        problems.append("filename is empty")
    audio_path = Path(os.path.abspath(folder / fname)) if fname else folder
    duration, bad = _parse_duration(values["duration"])
    if bad:
        problems.append(bad)
    if need_keyword and not values["keyword"]:
        problems.append("keyword is empty")
    if values["split"] and values["split"] not in SPLITS:
        problems.append(f"split {values['split']!r} is not one of {', '.join(SPLITS)}"
                        f"{_suggest(values['split'], SPLITS)}")
    transcript = values["transcript"]
    if need_transcript and not transcript and values["keyword"] != SILENCE_LABEL:
        problems.append("transcript is empty (needed for CTC training)")
    if vocab is not None and transcript:
        invalid = vocab.invalid_chars(vocab.normalize(transcript))
        if invalid:
            problems.append(f"transcript {transcript!r} has characters outside the vocabulary: "
                            f"{''.join(sorted(invalid))!r}")
    if check_audio and fname:
        header_duration, problem = _audio_duration(audio_path)
        if problem:
            problems.append(problem)
        elif duration is None and not bad:
            duration = header_duration
    if problems:
        return None, problems
    return ManifestRow(filename=fname, keyword=values["keyword"], transcript=transcript, speaker=values["speaker"],
                       voice=values["voice"], duration=duration, split=values["split"], path=audio_path), []


_LABEL_FIELDS = ("keyword", "transcript", "speaker", "voice", "split")  # what must agree when a file is listed twice


def _duplicate_problems(path: Path, rows: Sequence[ManifestRow], wheres: Sequence[str]) -> list[str]:
    """Problems for a file listed twice with different labels; a :class:`ManifestWarning` for exact repeats."""
    first: dict[Path, int] = {}
    problems: list[str] = []
    repeats: list[str] = []
    for i, row in enumerate(rows):
        j = first.setdefault(row.path, i)
        if j == i:
            continue
        other = rows[j]
        differ = [f for f in _LABEL_FIELDS if getattr(row, f) != getattr(other, f)]
        if differ:
            values = "; ".join(f"{f} {getattr(other, f)!r} vs {getattr(row, f)!r}" for f in differ)
            problems.append(f"{wheres[i]} {row.filename!r}: the same audio file as {wheres[j]}, labelled another "
                            f"way ({values}); keep one of the two rows")
        else:
            repeats.append(f"{wheres[i]} repeats {wheres[j]} ({row.filename!r})")
    if repeats:
        shown = "; ".join(repeats[:5]) + (f"; ... and {len(repeats) - 5} more" if len(repeats) > 5 else "")
        warnings.warn(f"manifest {path}: {len(repeats)} duplicate row(s), each used twice as often: {shown}; "
                      "delete the repeats unless the oversampling is meant", ManifestWarning, stacklevel=3)
    return problems


def _audio_duration(audio_path: Path) -> tuple[float | None, str | None]:
    """``(duration from the WAV header, None)``, or ``(None, problem)`` when the file is missing or unreadable."""
    from kwslab.audio import WavError, check_wav, special_file_problem  # lazy: keeps this module importable alone

    special = special_file_problem(audio_path)  # before any open(): a FIFO would block it
    if special is not None:
        return None, f"audio path {audio_path} is {special}, not a WAV file; name a regular .wav file"
    if not audio_path.exists():
        return None, f"audio file not found at {audio_path}"
    try:
        info = check_wav(audio_path)
    except (WavError, OSError) as e:
        return None, f"audio file is not a readable WAV: {e}"
    return float(info.duration), None


def _cell(key: str, value: object) -> str:
    if value is None:
        return ""
    if key == "duration" and value != "":
        return repr(round(float(value), 6))  # type: ignore[arg-type]
    text = str(value)
    if "\n" in text or "\r" in text:
        raise ValueError(f"manifest value for {key!r} contains a line break: {text!r}")
    return text


def _relative_filename(value: object, folder: Path) -> str:
    p = Path(str(value))
    if p.is_absolute():
        try:
            return Path(os.path.abspath(p)).relative_to(folder).as_posix()
        except ValueError:
            return str(p)
    return p.as_posix()


def write_manifest(path: str | os.PathLike[str], rows: Iterable[Mapping[str, object] | ManifestRow]) -> None:
    """Write rows to a manifest CSV atomically (temp file in the same folder, then ``os.replace``).

    The header is always :data:`MANIFEST_COLUMNS`. Missing keys are written as ``""``. Filenames that lie
    under the manifest's folder are written relative to it (POSIX separators); others stay absolute.
    A :class:`ManifestRow` is written from its absolute ``path``, so rows can be moved between manifests.

    Raises:
        ValueError: for a key that is not a manifest column, a missing filename, or a line break in a value.
    """
    path = Path(path)
    folder = path.parent.absolute()
    folder.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(MANIFEST_COLUMNS)
    for i, row in enumerate(rows, start=1):
        if isinstance(row, ManifestRow):
            values = row.to_dict()
            if row.path != Path():
                values["filename"] = str(row.path)
        else:
            unknown = sorted(set(row) - set(MANIFEST_COLUMNS))
            if unknown:
                hint = "".join(_suggest(u, MANIFEST_COLUMNS) for u in unknown[:1])
                raise ValueError(f"write_manifest({path}): row {i} has unknown key(s) {unknown}{hint}; "
                                 f"valid: {', '.join(MANIFEST_COLUMNS)}")
            values = dict(row)
        if not values.get("filename"):
            raise ValueError(f"write_manifest({path}): row {i} has no filename")
        values["filename"] = _relative_filename(values["filename"], folder)
        writer.writerow([_cell(c, values.get(c, "")) for c in MANIFEST_COLUMNS])
    atomic_write_text(path, buf.getvalue())


def split_rows(rows: Iterable[ManifestRow]) -> dict[str, list[ManifestRow]]:
    """Group rows by their ``split`` value (``""`` for rows without one), keeping order."""
    out: dict[str, list[ManifestRow]] = {}
    for r in rows:
        out.setdefault(r.split, []).append(r)
    return out


# Keep the dataclass fields and the CSV columns in step (checked once at import).
assert tuple(f.name for f in fields(ManifestRow))[:-1] == MANIFEST_COLUMNS
