"""`make faults`: the fault and abuse suite of issue 11 (docs/reliability.md).

Real processes on this machine, on private servers the suite starts and stops itself
under var/faults/ (never the shared PostgreSQL or Redis): PostgreSQL and Redis from the
wheels in .venv (crm/embedded.py), gunicorn, a Celery worker and beat, DEBUG off, the app
role. Each scenario prints its figures as one JSON object and fails the run when a
promise does not hold; a summary table closes the run.

    python -m faults                 # every scenario (about 37 minutes)
    python -m faults hostile ssrf    # some of them
    FAULTS_QUICK=1 python -m faults  # small sizes and short waits, for development only

Not part of `make test` (pytest collects tests/ only).
"""
