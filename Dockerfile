# One image for every process of the CRM: web (gunicorn), Celery worker, Celery beat and
# the one-shot migrate job. docker-compose.yml picks the command; the default is the web.
#
#   docker build -t crm:local .
#   docker run --env-file .env -p 8000:8000 crm:local
FROM python:3.12-slim

# CRM_VAR_DIR: settings.py puts STATIC_ROOT at $CRM_VAR_DIR/staticfiles. The static files
# are collected below, at build time, into /app/var: keep CRM_VAR_DIR at /app/var at run time.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CRM_VAR_DIR=/app/var

# Unprivileged user the processes run as; it owns var/ only, not the code.
RUN groupadd --system --gid 10001 crm \
 && useradd --system --uid 10001 --gid crm --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin crm

WORKDIR /app

# Dependencies first, so that a code change does not reinstall them. pyproject.toml has
# `[tool.setuptools] packages = []`: this installs the dependencies only, the code itself
# runs from /app. Built outside /app so no build/ or *.egg-info is left in the tree.
# Every dependency ships a manylinux wheel (psycopg[binary] bundles libpq): no compiler.
COPY pyproject.toml /tmp/crm-build/
RUN pip install --no-cache-dir /tmp/crm-build \
 && rm -rf /tmp/crm-build

COPY . .

# settings.py creates $CRM_VAR_DIR at import: make it the app user's before switching.
RUN mkdir -p /app/var/media && chown -R crm:crm /app/var

USER crm

# Static files for WhiteNoise (CompressedManifestStaticFilesStorage when DEBUG=False).
# Production settings refuse to load without SECRET_KEY, DATABASE_URL and REDIS_URL:
# throwaway values for this step only, never used at run time. No database or broker is
# contacted (and the embedded servers are not installed in the image).
RUN SECRET_KEY=build-only-collectstatic-key-not-a-secret-0123456789 DEBUG=False \
    DATABASE_URL=postgres://build@localhost/build REDIS_URL=redis://localhost:6379/0 \
    python manage.py collectstatic --noinput

EXPOSE 8000

# Threaded workers with a read timeout per connection (crm/gunicorn.conf.py): a client that
# sends its body slowly or not at all frees its thread after WEB_IO_TIMEOUT seconds.
CMD ["gunicorn", "-c", "crm/gunicorn.conf.py", "crm.wsgi:application"]
