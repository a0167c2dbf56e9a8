"""What a TTS build makes: the settings (``BuildConfig``) and the deterministic plan of samples.

A plan maps every (text, voice, index) to a file name and a voice spec, both functions of the settings
and the seed only. That is what makes builds resumable: a re-run recomputes the same plan, finds the
files already made and only synthesises the rest.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from kwslab.tts.common import digest, item_rng, slugify, voice_slug
from kwslab.tts.openai_tts import DEFAULT_MODEL, DEFAULT_PRICE_PER_MILLION, OPENAI_VOICES

BACKENDS = ("espeak", "openai")
SENTENCE_DIR = "_sentences"  # wav/_sentences/<slug>-<hash>/ holds the clips of --transcripts lines


@dataclass
class BuildConfig:
    """Settings of one TTS dataset build (CLI flags, YAML keys and Python fields share these names)."""

    out: str = "data/tts"              # output folder: manifest.csv, labels.txt, transcripts.txt, wav/
    backend: str = "espeak"            # "espeak" (offline) or "openai"
    keywords: list[str] = field(default_factory=list)  # one class per keyword
    transcripts: str | None = None     # file with one utterance per line (CTC sentences)
    sentence_keyword: bool = False     # keyword column of transcript lines: the line itself (True) or ""
    voices: list[str] = field(default_factory=lambda: ["default"])  # names, "default" or "all"
    per_voice: int = 5                 # samples per text per voice (balanced)
    sample_rate: int = 16000           # Hz of the written WAVs (16-bit PCM mono)
    concurrency: int | None = None     # espeak: worker processes (None = CPU cores); openai: threads (None = 4)
    seed: int = 0                      # draws of rate/pitch/range (espeak) and instructions (openai)
    dry_run: bool = False              # print the plan (and OpenAI cost), make nothing
    trim: bool = True                  # cut leading/trailing silence
    trim_db: float = 40.0              # silence = this many dB below the loudest 10 ms frame
    normalize: float | None = 0.9      # peak level, or None to keep the engine's level
    rate: tuple[int, int] = (130, 200)         # espeak words per minute, drawn per sample (inclusive)
    pitch: tuple[int, int] = (30, 70)          # espeak base pitch 0-100
    pitch_range: tuple[int, int] = (30, 70)    # espeak pitch range 0-100
    model: str = DEFAULT_MODEL                 # OpenAI TTS model
    instructions: list[str] = field(default_factory=list)  # OpenAI style instructions, drawn per sample
    price_per_million: float = DEFAULT_PRICE_PER_MILLION  # USD per 1M characters, for --dry-run estimates
    env_file: str | None = ".env"      # where to look for OPENAI_API_KEY when the environment has none
    max_retries: int = 6               # OpenAI retries per sample (429/5xx/timeouts/non-WAV bodies)
    timeout: float = 60.0              # OpenAI seconds per request
    progress: bool = True              # on stderr: a bar on a terminal, else a line per tenth done

    def __post_init__(self) -> None:
        self.keywords = [str(k).strip() for k in (self.keywords or [])]
        self.voices = [str(v).strip() for v in (self.voices or [])]
        self.instructions = [str(i) for i in (self.instructions or [])]
        for name in ("rate", "pitch", "pitch_range"):
            value = getattr(self, name)
            if not isinstance(value, (list, tuple)) or len(value) != 2 or not all(isinstance(v, int) for v in value) \
                    or value[0] > value[1]:
                raise ValueError(f"BuildConfig.{name}: {value!r} must be two integers [low, high] with low <= high")
            setattr(self, name, (int(value[0]), int(value[1])))
        problems = []
        if self.backend not in BACKENDS:
            problems.append(f"backend: {self.backend!r} is not one of {', '.join(BACKENDS)}")
        if not self.keywords and not self.transcripts:
            problems.append("keywords/transcripts: give --keywords and/or --transcripts FILE")
        if any(not k for k in self.keywords):
            problems.append("keywords: empty keyword")
        dupes = sorted({k for k in self.keywords if self.keywords.count(k) > 1})
        if dupes:
            problems.append(f"keywords: listed more than once: {', '.join(dupes)}")
        if not self.voices or any(not v for v in self.voices):
            problems.append("voices: give at least one non-empty voice name (or 'default' / 'all')")
        if not isinstance(self.per_voice, int) or self.per_voice < 1:
            problems.append(f"per_voice: {self.per_voice!r} must be an integer >= 1")
        if not isinstance(self.sample_rate, int) or not 4000 <= self.sample_rate <= 192000:
            problems.append(f"sample_rate: {self.sample_rate!r} must be an integer in [4000, 192000]")
        if self.concurrency is not None and (not isinstance(self.concurrency, int) or self.concurrency < 1):
            problems.append(f"concurrency: {self.concurrency!r} must be an integer >= 1")
        if self.normalize is not None and not 0.0 < float(self.normalize) <= 1.0:
            problems.append(f"normalize: {self.normalize!r} must be in (0, 1] or null")
        if self.max_retries < 0 or self.timeout <= 0 or self.price_per_million < 0:
            problems.append("max_retries >= 0, timeout > 0 and price_per_million >= 0 are required")
        if problems:
            raise ValueError("invalid TTS build config:\n  " + "\n  ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (tuples as lists), ready for YAML/JSON."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BuildConfig:
        """Build from a mapping (e.g. a YAML file); an unknown key raises ValueError naming it."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown TTS build setting(s) {unknown}; valid: {', '.join(sorted(names))}")
        return cls(**dict(d))

    def generation_settings(self) -> dict[str, Any]:
        """The settings that change the audio of a given file name (a build folder must keep them fixed)."""
        keys = ["backend", "seed", "sample_rate", "trim", "trim_db", "normalize"]
        keys += ["rate", "pitch", "pitch_range"] if self.backend == "espeak" else ["model", "instructions"]
        return {k: v for k, v in self.to_dict().items() if k in keys}


@dataclass(frozen=True)
class PlanItem:
    """One sample to make: ``filename`` (relative to the output folder) holds ``text`` said by ``spec``."""

    filename: str
    text: str
    keyword: str
    voice: str          # voice name as listed, also the manifest's speaker column ("en-us+f3", "coral")
    index: int          # 0 .. per_voice-1
    spec: str           # manifest voice column: "en-us+f3;rate=162;pitch=61;range=44" or "coral;instr=2"
    instruction: int | None = None  # OpenAI: index into BuildConfig.instructions


def read_transcripts(path: str | Path) -> list[str]:
    """Utterances of a transcripts file: one per line, stripped; blank lines skipped, repeats dropped."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise ValueError(f"--transcripts {path}: no such file (one utterance per line expected)") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"--transcripts {path}: not UTF-8 text ({e})") from None
    out = list(dict.fromkeys(line.strip() for line in lines if line.strip()))
    if not out:
        raise ValueError(f"--transcripts {path}: the file has no non-blank lines")
    return out


def resolve_voice_names(cfg: BuildConfig) -> list[str]:
    """The backend's voice list with ``default``/``all`` expanded and every name checked."""
    if cfg.backend == "espeak":
        from kwslab.tts.espeak import resolve_voices

        return resolve_voices(cfg.voices)
    out: list[str] = []
    for v in cfg.voices:
        out.extend(OPENAI_VOICES if v in ("default", "all") else [v])
    if len(set(out)) != len(out):
        raise ValueError(f"voices: listed more than once in {cfg.voices}")
    return out


def make_plan(cfg: BuildConfig) -> list[PlanItem]:
    """Every sample of the build, in order: texts (keywords, then transcript lines) x voices x index."""
    texts = [(k, k, slugify(k)) for k in cfg.keywords]
    if cfg.transcripts:
        texts += [(line, line if cfg.sentence_keyword else "", f"{SENTENCE_DIR}/{slugify(line)}-{digest(line)[:8]}")
                  for line in read_transcripts(cfg.transcripts)]
    folders: dict[str, str] = {}
    for text, _, folder in texts:
        if folders.setdefault(folder, text) != text:
            raise ValueError(f"keywords {folders[folder]!r} and {text!r} would share the folder wav/{folder}; "
                             "keep one of them (keywords are compared case- and punctuation-insensitively)")
    voices = resolve_voice_names(cfg)
    slugs: dict[str, str] = {}
    for v in voices:
        if slugs.setdefault(voice_slug(v), v) != v:
            raise ValueError(f"voices {slugs[voice_slug(v)]!r} and {v!r} give the same file name; keep one")
    plan = []
    for text, keyword, folder in texts:
        for voice in voices:
            for i in range(cfg.per_voice):
                rng = item_rng(cfg.seed, text, voice, i)
                instruction = None
                if cfg.backend == "espeak":
                    from kwslab.tts.espeak import draw_voice_spec

                    spec = str(draw_voice_spec(voice, rng, cfg.rate, cfg.pitch, cfg.pitch_range))
                elif cfg.instructions:
                    instruction = int(rng.integers(len(cfg.instructions)))
                    spec = f"{voice};instr={instruction}"
                else:
                    spec = voice
                plan.append(PlanItem(f"wav/{folder}/{voice_slug(voice)}_{i:03d}.wav", text, keyword, voice, i,
                                     spec, instruction))
    return plan
