"""kwslab: keyword spotting and CTC speech recognition with PyTorch Lightning, built from the signal up.

Layers, bottom to top (data flows one way):
``audio`` (WAV IO, resampling) -> ``dsp`` (features) -> ``data`` (manifests, datasets) -> ``models`` -> ``decoding``.
``audio`` and ``dsp`` import neither torch nor Lightning.
"""

__version__ = "0.1.0"
