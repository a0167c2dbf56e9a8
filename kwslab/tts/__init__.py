"""Text-to-speech dataset building: offline espeak-ng (default) and OpenAI ``gpt-4o-mini-tts``.

``python -m kwslab.tts --keywords yes no --out data/tts`` or, from Python::

    from kwslab.tts import BuildConfig, build_dataset
    summary = build_dataset(BuildConfig(out="data/tts", keywords=["yes", "no"], per_voice=2))
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
