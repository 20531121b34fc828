"""Safe, fast YAML loading with the limits a GitOps tool needs.

One concept a module; callers import from here (``from gitops.render.yaml import load``):

* :mod:`.events`: the event source, libyaml through PyYAML's C parser, or PyYAML's pure-Python
  parser where PyYAML was built without it (only events: nothing is constructed from tags);
* :mod:`.scalars`: resolving, what a scalar means in each :class:`Dialect` (go-yaml v2 for
  Kubernetes, v3 for compose) and how a non-string key becomes a string (:func:`stringify_key`);
* :mod:`.documents`: loading, :func:`load` builds a stream's documents with an explicit stack,
  bounded by :class:`Limits` (aliases, depth), with duplicate keys, merge keys and syntax errors
  as diagnostics;
* :mod:`.lines`: locating, :func:`locate` re-reads one document to find the line and column
  (a :data:`Position`) of each JSON pointer a diagnostic names (:func:`escape_pointer` builds them).
"""

from __future__ import annotations

from gitops.render.yaml.documents import Document, Limits, Lines, LoadResult, gc_paused, load
from gitops.render.yaml.lines import Position, escape_pointer, locate, locate_documents, locate_in_data
from gitops.render.yaml.scalars import Dialect, stringify_key

__all__ = [
    "Dialect",
    "Document",
    "Limits",
    "Lines",
    "LoadResult",
    "Position",
    "escape_pointer",
    "gc_paused",
    "load",
    "locate",
    "locate_documents",
    "locate_in_data",
    "stringify_key",
]
