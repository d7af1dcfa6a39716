"""`recarena fidelity`: simulated users against held-out real behaviour (scenario.py) and its report."""
