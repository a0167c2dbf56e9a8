"""Plain helpers shared by several test packages (fixtures are in ``conftest.py``, never here):

- ``keyword_task``: the tiny tone keyword task (``make_tiny_dataset``, ``tiny_config``), the tone dataset with a
  ``_silence_`` class (``make_tone_dataset``) and tone streams (``tone_stream``);
- ``ctc_task``: the tiny CTC task of spelled tone bursts (``make_tiny_ctc_dataset``, ``tiny_ctc_config``);
- ``checkpoints``: untrained checkpoints written directly (``write_checkpoint``, ``keyword_checkpoint``,
  ``ctc_checkpoint``);
- ``clips``: small 8 kHz clips and keyword/CTC manifests for the data tests (``write_keyword_manifests``, ...);
- ``callbacks``: ``CrashAt``, a Lightning callback that fails mid-epoch (named by class path in configs);
- ``scripts``: ``load_script``, a file of ``scripts/`` loaded as a module.

A helper that only one test package uses stays beside its tests (``tests/decoding/_brute.py``,
``tests/audio/wavbuild.py``, ``tests/tts/fake_openai.py``).
"""
