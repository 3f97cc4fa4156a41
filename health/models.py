"""Six-dimension customer health scores, daily snapshots, the risk list and playbooks."""
