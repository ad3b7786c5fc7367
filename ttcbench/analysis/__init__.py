"""Analysis: estimators over sample pools, confidence intervals, fits, frontiers and reports."""
