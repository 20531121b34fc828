"""The engine: the only module that composes every stage (source, render, validate, observe, diff,
plan, apply, rollout, rollback, state). The CLI and the daemon call only this module."""
