"""The one query compiler every read goes through: parse, check, rewrite, transpile."""

from lakeplane.query.compiler import CompiledQuery, TableBinding, compile_query

__all__ = ["CompiledQuery", "TableBinding", "compile_query"]
