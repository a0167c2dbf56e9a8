"""Inspect WAV files: format, duration, levels and clipping, as a table or JSON.

Usage: ``python -m kwslab.inspect FILE [FILE ...] [--json]``. Files that cannot be read are reported on stderr,
one line each naming the file and the reason; the others are still inspected, and the exit status is 1.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from kwslab.audio import WavError, read_wav, wav_info

CLIP_LEVEL = 0.999  # |x| at or above this counts as clipped (as does the encoding's own full scale)

_EPILOG = """\
columns:
  rate      sample rate (Hz)          ch        channels
  encoding  pcm_u8, pcm_s16, pcm_s24, pcm_s32, float32 or float64
  duration  seconds of whole frames actually present
  min, max  extreme sample values, on a [-1, 1] full scale
  rms_dbfs  RMS level over all samples in dB relative to full scale (a full-scale sine is -3.01; silence -inf)
  clipped   samples with |x| >= 0.999 or at the encoding's full-scale code (8-bit: 0 or 255)
  notes     tolerated oddities: streamed header, truncated data chunk, partial last frame, ...

exit status: 0 if every file was read, 1 if any could not be (each reported on stderr), 2 on bad usage.
example: python -m kwslab.inspect data/*.wav --json > report.json
"""


def _full_scale(encoding: str) -> float:
    """Largest positive value the encoding can hold on the [-1, 1] scale (PCM is asymmetric)."""
    bits = {"pcm_u8": 8, "pcm_s16": 16, "pcm_s24": 24, "pcm_s32": 32}.get(encoding)
    return 1.0 if bits is None else 1.0 - 2.0 ** (1 - bits)


def inspect_file(path: str) -> dict[str, Any]:
    """Describe one WAV file as a JSON-ready dict (``rms_dbfs`` None for silence; min/max None when empty).

    Raises:
        WavError: The file cannot be read (the message names it and says why).
    """
    info = wav_info(path)
    x, _ = read_wav(path)
    x = x.astype(np.float64)
    empty = x.size == 0
    rms = math.sqrt(float(np.mean(x * x))) if not empty else 0.0
    at_full_scale = (np.abs(x) >= CLIP_LEVEL) | (x >= _full_scale(info.encoding)) | (x <= -1.0)
    clipped = int(np.count_nonzero(at_full_scale))
    return {
        "file": path,
        "sample_rate": info.sample_rate,
        "channels": info.channels,
        "encoding": info.encoding,
        "sample_width": info.sample_width,
        "frames": info.frames,
        "duration": info.duration,
        "min": None if empty else float(x.min()),
        "max": None if empty else float(x.max()),
        "rms_dbfs": 20.0 * math.log10(rms) if rms > 0 else None,
        "clipped": clipped,
        "notes": list(info.notes),
    }


def _num(value: float | None, fmt: str, missing: str = "-") -> str:
    return missing if value is None else format(value, fmt)


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """An aligned text table of :func:`inspect_file` results (text left-aligned, numbers right-aligned)."""
    header = ["file", "rate", "ch", "encoding", "duration", "min", "max", "rms_dbfs", "clipped"]
    with_notes = any(r["notes"] for r in rows)
    if with_notes:
        header.append("notes")
    body = []
    for r in rows:
        cells = [r["file"], str(r["sample_rate"]), str(r["channels"]), r["encoding"], f"{r['duration']:.3f}",
                 _num(r["min"], ".4f"), _num(r["max"], ".4f"),
                 "-inf" if r["rms_dbfs"] is None else f"{r['rms_dbfs']:.1f}", str(r["clipped"])]
        if with_notes:
            cells.append("; ".join(r["notes"]))
        body.append(cells)
    left = {"file", "encoding", "notes"}
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    lines = []
    for row in [header, *body]:
        cells = [c.ljust(w) if h in left else c.rjust(w) for c, w, h in zip(row, widths, header)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of ``python -m kwslab.inspect``."""
    parser = argparse.ArgumentParser(
        prog="python -m kwslab.inspect",
        description="Show each WAV file's sample rate, channels, encoding, duration, min/max, RMS level (dBFS) "
        "and clipped-sample count. Unreadable files are reported on stderr (file and reason) and the "
        "rest are still inspected.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="WAV files to inspect")
    parser.add_argument("--json", action="store_true",
                        help="print a JSON list with one object per readable file instead of the table")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 all read, 1 some unreadable)."""
    args = build_parser().parse_args(argv)
    rows, failed = [], 0
    for path in args.files:
        try:
            rows.append(inspect_file(path))
        except WavError as exc:
            failed += 1
            print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
    if args.json:
        print(json.dumps(rows, indent=2))
    elif rows:
        print(format_table(rows))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
