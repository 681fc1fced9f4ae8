# The official Apache Airflow image with this repository's provider and its emulator installed
# (docker-compose.yaml builds it; the emulator service runs `python -m jobstatus_emulator` in it).
# Keep the tag in step with docker-compose.yaml's image tag and pyproject.toml (tests/e2e/test_compose.py checks).
FROM apache/airflow:3.3.2

# Only what the packages need to build; .dockerignore keeps .venv, tests and caches out of the context.
COPY --chown=airflow:root pyproject.toml README.md /opt/airflow-jobstatus/
COPY --chown=airflow:root airflow_jobstatus /opt/airflow-jobstatus/airflow_jobstatus
COPY --chown=airflow:root emulator /opt/airflow-jobstatus/emulator

# Pinning apache-airflow to the image's own version (AIRFLOW_VERSION is set by the base image) stops pip
# from upgrading or downgrading Airflow while it resolves the packages' dependencies.
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" "/opt/airflow-jobstatus[push]" /opt/airflow-jobstatus/emulator
