"""``python -m kwslab.tts``: build a balanced keyword (or sentence) dataset with espeak-ng or OpenAI TTS.

Examples::

    python -m kwslab.tts --keywords yes no up down --per-voice 2 --out data/tts_espeak
    python -m kwslab.tts --backend openai --keywords yes no --voices coral onyx --per-voice 3 --out oai --dry-run
    python -m kwslab.tts --config build.yaml --seed 3      # flags override the YAML's keys

Exit status: 0 done, 1 some samples failed (re-run to retry them), 2 bad settings or the run had to stop.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

import yaml

from kwslab.tts.builder import BuildError, build_dataset
from kwslab.tts.openai_tts import DEFAULT_PRICE_PER_MILLION, OPENAI_VOICES
from kwslab.tts.plan import BACKENDS, BuildConfig


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m kwslab.tts", description=__doc__.split("\n\n")[0].split(": ", 1)[1],
                                argument_default=argparse.SUPPRESS,
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]) + "\nDefaults: see --print-config.")
    p.add_argument("--config", help="YAML file with BuildConfig keys (out, keywords, voices, per_voice, ...)")
    p.add_argument("--backend", choices=BACKENDS, help="espeak (offline, default) or openai")
    p.add_argument("--keywords", nargs="+", metavar="WORD", help="keywords, one class each")
    p.add_argument("--transcripts", metavar="FILE", help="one utterance per line (sentences for CTC)")
    p.add_argument("--sentence-keyword", dest="sentence_keyword", action="store_true",
                   help="put each transcript line in the keyword column too (default: empty)")
    p.add_argument("--voices", nargs="+", metavar="V",
                   help="voice names, 'default' or 'all' (espeak: LANG[+VARIANT], see --list-voices; "
                        f"openai: {', '.join(OPENAI_VOICES)})")
    p.add_argument("--per-voice", dest="per_voice", type=int, metavar="N", help="samples per text per voice")
    p.add_argument("--out", metavar="DIR", help="output folder")
    p.add_argument("--sample-rate", dest="sample_rate", type=int, metavar="HZ", help="output rate (16000)")
    p.add_argument("--concurrency", type=int, metavar="K", help="espeak processes (cores) / openai threads (4)")
    p.add_argument("--dry-run", dest="dry_run", action="store_true", help="show the plan and cost, make nothing")
    p.add_argument("--seed", type=int, help="seed of the per-sample draws (0)")
    p.add_argument("--rate", nargs=2, type=int, metavar=("LO", "HI"), help="espeak words/min range (130 200)")
    p.add_argument("--pitch", nargs=2, type=int, metavar=("LO", "HI"), help="espeak pitch range, 0-100 (30 70)")
    p.add_argument("--range", dest="pitch_range", nargs=2, type=int, metavar=("LO", "HI"),
                   help="espeak pitch-range range, 0-100 (30 70)")
    p.add_argument("--no-trim", dest="trim", action="store_false", help="keep leading/trailing silence")
    p.add_argument("--trim-db", dest="trim_db", type=float, help="silence threshold below the peak frame (40)")
    p.add_argument("--normalize", type=float, metavar="PEAK", help="peak-normalise to PEAK (0.9)")
    p.add_argument("--no-normalize", dest="normalize", action="store_const", const=None, help="keep engine level")
    p.add_argument("--model", help="OpenAI TTS model (gpt-4o-mini-tts)")
    p.add_argument("--instructions", nargs="+", metavar="TEXT", help="OpenAI style instructions, drawn per sample")
    p.add_argument("--price-per-million", dest="price_per_million", type=float, metavar="USD",
                   help=f"USD per 1M characters for --dry-run estimates ({DEFAULT_PRICE_PER_MILLION:g})")
    p.add_argument("--env-file", dest="env_file", metavar="FILE", help=".env file holding OPENAI_API_KEY (.env)")
    p.add_argument("--max-retries", dest="max_retries", type=int, help="OpenAI retries per sample (6)")
    p.add_argument("--timeout", type=float, help="OpenAI seconds per request (60)")
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress on stderr (default: a bar on a terminal, else a plain line per tenth done)")
    p.add_argument("--list-voices", action="store_true", help="list espeak languages/variants and OpenAI voices")
    p.add_argument("--print-config", action="store_true", help="print the resolved config as YAML and exit")
    return p


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping of BuildConfig keys; ValueError naming the file when it is not one."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"--config {path}: no such file") from None
    except yaml.YAMLError as e:
        raise ValueError(f"--config {path}: not valid YAML ({e})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"--config {path}: expected a mapping of settings, got {type(data).__name__}")
    return data


def _list_voices() -> str:
    from kwslab.tts.espeak import DEFAULT_VARIANTS, ENGLISH_ACCENTS, list_languages, list_variants

    return "\n".join([
        "espeak languages/accents (English): " + " ".join(x for x in list_languages() if x.startswith("en")),
        f"espeak languages (all {len(list_languages())}): " + " ".join(list_languages()),
        "espeak variants (voices/!v): " + " ".join(list_variants()),
        f"espeak 'default' voices: {{{','.join(ENGLISH_ACCENTS)}}} x +{{{','.join(DEFAULT_VARIANTS)}}}",
        "openai voices: " + " ".join(OPENAI_VOICES),
    ])


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    args = vars(_parser().parse_args(argv))
    if args.pop("list_voices", False):
        print(_list_voices())
        return 0
    print_config = args.pop("print_config", False)
    try:
        settings = load_config(args.pop("config")) if "config" in args else {}
        settings.update(args)
        cfg = BuildConfig.from_dict(settings)
        if print_config:
            print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), end="")
            return 0
        summary = build_dataset(cfg)
    except (ValueError, BuildError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished clips and the manifest are saved; re-run to complete", file=sys.stderr)
        return 130
    if not summary.dry_run:
        print(summary.format())
    return 1 if summary.failed else 0


if __name__ == "__main__":
    sys.exit(main())
