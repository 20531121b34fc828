"""The sync daemon: runs the engine forever, heals drift, serves /healthz, /readyz and /metrics."""
