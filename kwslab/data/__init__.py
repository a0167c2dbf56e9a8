"""Data: the manifest schema (:mod:`kwslab.data.manifest`), preparers (:mod:`kwslab.data.sources`),
datasets and datamodules (import those from their own modules; this package stays torch-free)."""

from kwslab.data.manifest import (
    MANIFEST_COLUMNS,
    SILENCE_LABEL,
    SPLITS,
    UNKNOWN_LABEL,
    ManifestError,
    ManifestRow,
    read_manifest,
    split_rows,
    write_manifest,
)

__all__ = [
    "MANIFEST_COLUMNS",
    "SILENCE_LABEL",
    "SPLITS",
    "UNKNOWN_LABEL",
    "ManifestError",
    "ManifestRow",
    "read_manifest",
    "split_rows",
    "write_manifest",
]
