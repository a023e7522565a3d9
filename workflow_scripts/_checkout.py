"""Puts this checkout first on sys.path, so rule scripts import its siteaug package in any environment
(a conda env made by --sdm conda, a cluster node) without installing it there."""
import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
