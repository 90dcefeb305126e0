"""Servers that let SQL clients and BI tools query the lake as a principal."""
