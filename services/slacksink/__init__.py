"""A local stand-in for Slack incoming webhooks: receives Alertmanager's Slack notifications, keeps the
newest in memory (optionally a JSONL file) and shows them at / and /api/messages."""
