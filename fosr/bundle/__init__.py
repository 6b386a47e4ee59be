"""Model bundles: the one file that carries learnt models to generation.

A bundle is a ZIP archive (``model.fosr``) holding ``manifest.json``, named
JSON documents ``parts/<name>.json`` (one per model part: the flow model,
the packet model) and named arrays ``arrays/<name>.npy``.  It holds data
only, never code: no pickle anywhere, a strict subset of ZIP, .npy arrays
of numbers and booleans, JSON without NaN.  Reading checks the structure,
the format version, every member's size and SHA-256, every array header,
and size limits on everything, and refuses a damaged or hostile file with
a BundleError naming the file, the member and the field.

The bundle layer does not know what a flow model is: parts check their own
documents through :class:`Field` and their arrays through
:meth:`Bundle.array`.  docs/bundle.md describes the format, the checks, the
limits and the versioning policy.
"""

from fosr.bundle._json import JSON
from fosr.bundle._limits import Limits
from fosr.bundle._manifest import FORMAT_NAME, FORMAT_VERSION, Part
from fosr.bundle._provenance import DataFile, Provenance
from fosr.bundle._reader import Bundle, read_bundle, unpack_bundle
from fosr.bundle._schema import Field
from fosr.bundle._writer import pack_bundle, write_bundle
from fosr.errors import BundleError

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "JSON",
    "Bundle",
    "BundleError",
    "DataFile",
    "Field",
    "Limits",
    "Part",
    "Provenance",
    "pack_bundle",
    "read_bundle",
    "unpack_bundle",
    "write_bundle",
]
