"""Opportunities: stages with required actions, the validity funnel, pipeline and forecast,
contracts and lost reasons."""
