"""Table housekeeping: compaction, snapshot expiry that frees storage, orphan cleanup, manifests,
policies, and storage tiers."""
