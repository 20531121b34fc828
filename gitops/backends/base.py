"""The Backend protocol that the core stages program against.

The engine never imports `kubernetes` or `docker`; it talks to a target through this protocol.
The verbs grow with the plan/apply issues; the shape stays: read live state in bulk, apply one
object, delete one object, read health, keep state and a lock on the target.
"""

from __future__ import annotations

from typing import Any, Protocol

from gitops.model import Resource, ResourceKey


class Backend(Protocol):
    name: str

    def observe(self, keys: list[ResourceKey]) -> dict[ResourceKey, dict[str, Any]]:
        """Live objects for the given identities (missing ones are absent from the result)."""
        ...

    def apply(self, resource: Resource) -> dict[str, Any]:
        """Create or update one object; return the live object after the write."""
        ...

    def delete(self, key: ResourceKey) -> None:
        """Delete one object; deleting an absent object is not an error."""
        ...
