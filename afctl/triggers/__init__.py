"""Triggers declared on workflows, and `afctl serve`, which runs them: schedules (cron),
webhooks (HTTP, optionally signed) and file watches."""
