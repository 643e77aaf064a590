"""The Grafana dashboards, generated: content (what they show), thresholds (the alert lines they
draw), builder (how the JSON is built). `tools/gen_dashboards.py` writes them."""
