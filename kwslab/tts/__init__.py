"""Text-to-speech dataset building: offline espeak-ng (default) and OpenAI ``gpt-4o-mini-tts``.

``python -m kwslab.tts --keywords yes no --out data/tts`` or, from Python::

    from kwslab.tts import BuildConfig, build_dataset
    summary = build_dataset(BuildConfig(out="data/tts", keywords=["yes", "no"], per_voice=2))

:mod:`kwslab.tts.corpus` builds the embedded defaults' corpora from it (keywords with ``_unknown_`` and
``_silence_``; connected digits), and :mod:`kwslab.tts.datamodules` holds the datamodules that build them when
missing (import it by name: it needs torch, this package does not).
"""

from kwslab.tts.builder import BuildError, BuildSummary, build_dataset
from kwslab.tts.common import TTSError
from kwslab.tts.espeak import VoiceSpec, list_languages, list_variants, parse_voice_spec, resolve_voices, synthesize
from kwslab.tts.openai_tts import OPENAI_VOICES, Secret, estimate_cost
from kwslab.tts.plan import BuildConfig, PlanItem, make_plan

__all__ = [
    "BuildConfig",
    "BuildError",
    "BuildSummary",
    "OPENAI_VOICES",
    "PlanItem",
    "Secret",
    "TTSError",
    "VoiceSpec",
    "build_dataset",
    "estimate_cost",
    "list_languages",
    "list_variants",
    "make_plan",
    "parse_voice_spec",
    "resolve_voices",
    "synthesize",
]
