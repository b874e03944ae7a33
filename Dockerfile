# One application image for web, workers, beat, flower and the inference service.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=labelapp.settings.production \
    LABELAPP_VAR_DIR=/data
WORKDIR /app

RUN apt-get update && apt-get install -y --no-install-recommends nodejs npm git \
    && rm -rf /var/lib/apt/lists/*
COPY requirements/ requirements/
# torch first and pinned (see requirements/ml.txt); use the CUDA index for GPU images.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
RUN pip install --no-cache-dir torch==2.13.0 --index-url ${TORCH_INDEX} \
    && pip install --no-cache-dir -r requirements/base.txt -r requirements/ml.txt flower==2.2.0
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN DJANGO_SECRET_KEY=build DATABASE_URL=sqlite:////tmp/build.db CELERY_BROKER_URL=memory:// \
    LABELAPP_CACHE_URL=redis://build:6379/0 \
    python manage.py collectstatic --no-input

EXPOSE 8000
CMD ["gunicorn", "labelapp.wsgi", "--bind", "0.0.0.0:8000", "--workers", "5"]
