"""Everything on disk: the SQLite journal, its rollup tiers, retention, and the disk reserve."""
