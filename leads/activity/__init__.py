"""The lead activity index (F41, docs/activity.md): every open lead scored each night on
freshness, action density and role coverage (compute), the rescue suggestions on the
rep's board for the leads below the line (rescue), and its figures in the metric
registry (metrics)."""
