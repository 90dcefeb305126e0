"""Compute: the price table, the cost of a run on each shape, and the advisor that picks one."""
