"""An OPA-REST-compatible server for tests (policy, data and query APIs, faults)."""
