"""Compute: what runs cost, how they scale, and where they should run."""
