"""The query service (``lakeplane serve``): SQL clients connect over the PostgreSQL wire protocol and
Arrow Flight SQL, and every statement is governed and audited as the principal that logged in."""
