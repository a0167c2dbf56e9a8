"""Long test streams with time-stamped keywords, for false alarms per hour and miss rates.

``python -m kwslab.data.sources.streams --manifest data/synthetic_keywords/test.csv --out data/streams/test``

Keyword clips (rows whose keyword is in ``keywords``; default: every label not starting with "_") and distractor
speech (``_unknown_`` rows and other words) are trimmed of silence and placed one after another with random gaps
over a background of coloured noise (plus ``_silence_`` clips when the manifest has them), each at a random SNR.
The truth goes to ``streams.json``::

    {"format": "kwslab-streams-1", "sample_rate": 16000, "keywords": ["no", "yes"],
     "streams": [{"filename": "stream_000.wav", "duration": 600.0,
                  "events": [{"keyword": "yes", "start": 3.21, "end": 3.64, "source": "..."}, ...],
                  "distractors": [{"label": "_unknown_", "start": ..., "end": ..., "source": ...}]}]}
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from kwslab.audio import WavError, load_audio, write_wav
from kwslab.data.manifest import SILENCE_LABEL, ManifestError, atomic_write_text, read_manifest
from kwslab.dsp.waveform import NOISE_COLORS, colored_noise, rms, trim_silence

FORMAT = "kwslab-streams-1"


class StreamManifestError(ValueError):
    """A stream manifest that cannot be used (the message names the file, the stream and the field)."""


@dataclass(frozen=True)
class StreamEntry:
    """One long recording: its absolute path, duration (s) and keyword events ``(keyword, start, end)``."""

    path: Path
    duration: float
    events: tuple[tuple[str, float, float], ...]


def compose_streams(manifest: str | Path, out: str | Path, *, keywords: Sequence[str] | None = None,
                    streams: int = 1, duration: float = 300.0, gap: tuple[float, float] = (1.0, 4.0),
                    keyword_fraction: float = 0.5, snr_db: tuple[float, float] = (5.0, 20.0),
                    noise_dbfs: float = -45.0, sample_rate: int = 16000, seed: int = 0,
                    noise_dir: str | Path | None = None, trim_floor_db: float | None = None,
                    keyword_manifests: Sequence[str | Path] = ()) -> Path:
    """Write ``streams`` WAVs of ``duration`` seconds and ``streams.json`` under ``out``; returns the JSON path.

    Args:
        manifest: isolated-word manifest (keyword column).
        out: output folder.
        keywords: labels counted as keywords (default: every label not starting with "_").
        streams: number of recordings. duration: seconds each (default 300).
        gap: seconds of background between consecutive clips, drawn uniformly (default 1-4).
        keyword_fraction: share of placed clips that are keywords; the rest are distractors (default 0.5).
        snr_db: per-clip speech-to-background ratio range in dB (default 5-20).
        noise_dbfs: background RMS level in dB re full scale (default -45).
        sample_rate: Hz (default 16000). seed: every random choice (default 0).
        noise_dir: WAV recordings to use as the background instead of synthetic coloured noise (e.g. Speech
            Commands' ``_background_noise_``): each stream is a chain of random pieces of them (10-60 s each, random
            offsets), at ``noise_dbfs``.
        trim_floor_db: also trim what is less than this many dB above each clip's noise floor (real recordings
            with room noise; see :func:`kwslab.dsp.waveform.trim_silence`), so keyword times are the word's.
        keyword_manifests: more manifests whose keyword rows (only those) are added to ``manifest``'s, e.g. every
            split's clips of a word no model here ever heard, over the test speakers' other words.
    """
    if not (0 < gap[0] <= gap[1]) or not 0 <= keyword_fraction <= 1 or duration <= 0 or streams < 1:
        raise ValueError("compose_streams: need 0 < gap min <= gap max, 0 <= keyword_fraction <= 1, duration > 0 "
                         f"and streams >= 1; got gap={gap}, keyword_fraction={keyword_fraction}, "
                         f"duration={duration}, streams={streams}")
    rows = read_manifest(manifest, need_keyword=True)
    kw = set(keywords) if keywords else {r.keyword for r in rows if not r.keyword.startswith("_")}
    targets = [r for r in rows if r.keyword in kw]
    seen = {r.path for r in targets}
    for extra in keyword_manifests:
        more = [r for r in read_manifest(extra, need_keyword=True) if r.keyword in kw and r.path not in seen]
        targets += more
        seen.update(r.path for r in more)
    distractors = [r for r in rows if r.keyword not in kw and r.keyword != SILENCE_LABEL]
    silences = [r for r in rows if r.keyword == SILENCE_LABEL]
    if not targets:
        raise ManifestError(manifest, [f"no row has one of the keywords {sorted(kw)}; pass --keywords that the "
                                       "manifest's keyword column holds"])
    if keyword_fraction < 1 and not distractors:
        keyword_fraction = 1.0  # nothing else to place
    noise_files = sorted(Path(noise_dir).glob("*.wav")) if noise_dir is not None else []
    if noise_dir is not None and not noise_files:
        raise ValueError(f"compose_streams: no WAV files in the noise folder {noise_dir}")
    rng = np.random.default_rng(seed)
    cache: dict[Path, np.ndarray] = {}

    def clip(path: Path, trim: bool = True) -> np.ndarray:
        if path not in cache:
            x = load_audio(path, sample_rate)
            x = trim_silence(x, sample_rate, pad=0.005, floor_db=trim_floor_db) if trim else x
            cache[path] = np.array(x, dtype=np.float32)
        return cache[path]

    def real_background(n: int) -> np.ndarray:
        y, pos = np.zeros(n), 0
        while pos < n:
            x = clip(noise_files[int(rng.integers(len(noise_files)))], trim=False)
            length = min(n - pos, len(x), int(rng.uniform(10.0, 60.0) * sample_rate))
            start = int(rng.integers(0, len(x) - length + 1))
            seg = x[start:start + length].astype(np.float64)
            r = rms(seg)
            y[pos:pos + length] = seg / r * noise_rms if r > 0 else 0.0
            pos += length
        return y

    out = Path(out)
    noise_rms = 10.0 ** (noise_dbfs / 20.0)
    entries = []
    for s in range(streams):
        n = int(round(duration * sample_rate))
        if noise_files:
            color = f"recordings in {noise_dir}"
            y = real_background(n)
        else:
            color = list(NOISE_COLORS)[int(rng.integers(len(NOISE_COLORS)))]
            y = colored_noise(n, color, rng).astype(np.float64) * noise_rms
        pos = 0
        while silences and pos < n:  # real background recordings, tiled at the same level
            x = clip(silences[int(rng.integers(len(silences)))].path, trim=False)
            seg = x[:n - pos]
            r = rms(seg)
            if r > 0:
                y[pos:pos + len(seg)] += seg / r * noise_rms
            pos += len(seg)
        events, others = [], []
        t = rng.uniform(*gap)
        while True:
            is_kw = rng.random() < keyword_fraction
            row = (targets if is_kw else distractors)[int(rng.integers(len(targets if is_kw else distractors)))]
            x = clip(row.path)
            start = int(round(t * sample_rate))
            if start + len(x) > n - int(gap[0] * sample_rate) or not len(x):
                break
            level = rms(x)
            if level > 0:
                y[start:start + len(x)] += x / level * noise_rms * 10.0 ** (rng.uniform(*snr_db) / 20.0)
            item = {"start": round(start / sample_rate, 4), "end": round((start + len(x)) / sample_rate, 4),
                    "source": str(row.path)}
            (events.append({"keyword": row.keyword, **item}) if is_kw
             else others.append({"label": row.keyword, **item}))
            t = (start + len(x)) / sample_rate + rng.uniform(*gap)
        peak = float(np.max(np.abs(y)))
        if peak > 0.99:  # scale everything down together: SNRs are kept
            y *= 0.99 / peak
        name = f"stream_{s:03d}.wav"
        write_wav(out / name, y.astype(np.float32), sample_rate)
        entries.append({"filename": name, "duration": round(n / sample_rate, 4), "background": color,
                        "events": events, "distractors": others})
    doc = {"format": FORMAT, "sample_rate": sample_rate, "keywords": sorted(kw),
           "settings": {"manifest": str(manifest), "duration": duration, "gap": list(gap),
                        "keyword_fraction": keyword_fraction, "snr_db": list(snr_db), "noise_dbfs": noise_dbfs,
                        "seed": seed, "noise_dir": str(noise_dir) if noise_dir is not None else None,
                        "trim_floor_db": trim_floor_db,
                        "keyword_manifests": [str(m) for m in keyword_manifests]},
           "streams": entries}
    path = out / "streams.json"
    atomic_write_text(path, json.dumps(doc, indent=1) + "\n")
    return path


def read_stream_manifest(path: str | Path) -> list[StreamEntry]:
    """Read and check ``streams.json``; every problem is listed in one :class:`StreamManifestError`."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StreamManifestError(f"{path}: stream manifest not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StreamManifestError(f"{path}: not a readable JSON stream manifest ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("streams"), list):
        raise StreamManifestError(f"{path}: expected an object with a 'streams' list (written by "
                                  "python -m kwslab.data.sources.streams)")
    problems, entries = [], []
    for i, s in enumerate(doc["streams"]):
        where = f"streams[{i}]"
        if not isinstance(s, dict) or not isinstance(s.get("filename"), str):
            problems.append(f"{where}: needs a 'filename' string")
            continue
        wav = (path.parent / s["filename"]).resolve()
        if not wav.is_file():
            problems.append(f"{where}: audio file {wav} not found")
        events = []
        for j, e in enumerate(s.get("events") or []):
            try:
                k, a, b = str(e["keyword"]), float(e["start"]), float(e["end"])
                if not 0 <= a < b:
                    raise ValueError
                events.append((k, a, b))
            except (KeyError, TypeError, ValueError):
                problems.append(f"{where}.events[{j}]: needs keyword, and 0 <= start < end (got {e!r})")
        dur = s.get("duration")
        if not isinstance(dur, (int, float)) or dur <= 0:
            problems.append(f"{where}: 'duration' must be a positive number of seconds (got {dur!r})")
            dur = 0.0
        entries.append(StreamEntry(wav, float(dur), tuple(events)))
    if problems:
        raise StreamManifestError(f"{path}: {len(problems)} problem(s):\n  " + "\n  ".join(problems))
    if not entries:
        raise StreamManifestError(f"{path}: the manifest lists no streams")
    return entries


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m kwslab.data.sources.streams", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--manifest", required=True, help="isolated-word manifest (e.g. a test.csv)")
    p.add_argument("--out", required=True, help="output folder (WAVs and streams.json)")
    p.add_argument("--keywords", default=None, help="comma-separated keywords (default: labels not starting _)")
    p.add_argument("--keyword-manifest", action="append", default=[], metavar="MANIFEST",
                   help="take the keyword rows of this manifest too (repeatable), e.g. every split's clips of a "
                        "word no model heard: --manifest test.csv --keyword-manifest train.csv --keyword-manifest "
                        "val.csv")
    p.add_argument("--streams", type=int, default=1, help="number of recordings (default 1)")
    p.add_argument("--minutes", type=float, default=5.0, help="length of each recording (default 5)")
    p.add_argument("--gap", type=float, nargs=2, default=(1.0, 4.0), metavar=("MIN", "MAX"),
                   help="seconds between clips (default 1 4)")
    p.add_argument("--keyword-fraction", type=float, default=0.5, help="share of clips that are keywords (0.5)")
    p.add_argument("--snr-db", type=float, nargs=2, default=(5.0, 20.0), metavar=("MIN", "MAX"))
    p.add_argument("--noise-dbfs", type=float, default=-45.0, help="background level (default -45 dBFS)")
    p.add_argument("--noise-dir", default=None,
                   help="background recordings (e.g. Speech Commands' _background_noise_) instead of synthetic noise")
    p.add_argument("--trim-floor-db", type=float, default=None,
                   help="also trim each clip down to what is this many dB above its noise floor (real recordings, "
                        "e.g. 10)")
    p.add_argument("--sample-rate", type=int, default=16000)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    try:
        path = compose_streams(a.manifest, a.out, keywords=a.keywords.split(",") if a.keywords else None,
                               streams=a.streams, duration=60.0 * a.minutes, gap=tuple(a.gap),
                               keyword_fraction=a.keyword_fraction, snr_db=tuple(a.snr_db),
                               noise_dbfs=a.noise_dbfs, sample_rate=a.sample_rate, seed=a.seed,
                               noise_dir=a.noise_dir, trim_floor_db=a.trim_floor_db,
                               keyword_manifests=a.keyword_manifest)
    except (ManifestError, WavError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    doc = json.loads(path.read_text())
    n_ev = sum(len(s["events"]) for s in doc["streams"])
    n_dis = sum(len(s["distractors"]) for s in doc["streams"])
    hours = sum(s["duration"] for s in doc["streams"]) / 3600
    print(f"wrote {path}: {len(doc['streams'])} stream(s), {hours * 60:.1f} min, {n_ev} keywords, "
          f"{n_dis} distractors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
