"""The ad-tech demo: a synthetic partner feed, a project that ingests it, and its nightly run."""
