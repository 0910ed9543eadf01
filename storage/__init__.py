"""aiosqlite: migrations, jobs, rate limits, usage statistics and privacy. Never imports discord, torch or generation."""
