"""fosr: learn generative models of benign network traffic and sample from them."""

from fosr.errors import (
    BundleError,
    CaptureError,
    ConfigError,
    FosrError,
    InputError,
    ModelError,
    RecordError,
    ToolError,
    TruncatedInputError,
)

__version__ = "0.1.0"

__all__ = [
    "BundleError",
    "CaptureError",
    "ConfigError",
    "FosrError",
    "InputError",
    "ModelError",
    "RecordError",
    "ToolError",
    "TruncatedInputError",
    "__version__",
]
