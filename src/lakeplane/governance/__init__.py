"""The governance plane: one policy (grants, tags, row filters, masks), enforced by rewriting every query."""
