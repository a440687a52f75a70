"""Where afctl keeps state and the prompt log: SQLite files in `.afctl/` (the embedded
default), or a PostgreSQL database a team shares (`AFCTL_DATABASE_URL`).

- `settings`: which database each store uses, from the environment;
- `sql`: one small interface over a SQLite or a PostgreSQL connection (the stores write SQL
  both understand: `?` parameters, `INSERT ... ON CONFLICT`, no SQLite-only functions);
- `schema`: one numbered migration history applied to either backend.
"""
