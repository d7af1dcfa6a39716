"""`recarena augment`: does training on simulated sessions help recommenders? (scenario.py, data.py, stats.py, report.py)"""
