"""ttcbench: compute-vs-accuracy curves for test-time compute scaling of language models."""

from __future__ import annotations

__version__ = "0.1.0"
