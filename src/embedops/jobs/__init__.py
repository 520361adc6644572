"""Scheduled jobs: what ``embedops serve`` runs on cron expressions (each also a CLI
command, for cron or a Kubernetes CronJob instead). See docs/freshness.md."""
