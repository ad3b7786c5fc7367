"""Task loading and grading by family (math, code, qa)."""
