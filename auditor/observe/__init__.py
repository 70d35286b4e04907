"""Watching a run: stage events from the pipeline (`events`), rendered for people on a terminal
and as JSON log lines elsewhere (`progress`, `logs`), and run metrics for Prometheus
(`metrics`, `run`).

Shared, below the stages: the pipeline emits `StageEvent`s through a callback and never imports
rich, structlog or prometheus_client; the CLI imports those lazily, in the commands that use them.
"""
