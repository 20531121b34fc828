"""Backends: one per orchestrator. Each SDK is imported only inside its backend's client adapter."""
