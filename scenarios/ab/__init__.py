"""`recarena ab`: the simulated A/B test (scenario.py), its sessions, sharding, metrics, off-policy estimates and report."""
