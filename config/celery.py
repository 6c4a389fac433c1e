"""The Celery application.

By default the broker is kombu's filesystem transport (a folder under ``var/``), so ``make run``
needs no broker server yet runs a real worker process. Set ``CELERY_BROKER_URL`` to a Redis or
RabbitMQ URL in production. Tasks are autodiscovered from the apps' ``tasks.py`` modules, which
must not import torch at module level (the web process imports them too).
"""
from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("tribunal", task_cls="celery.contrib.django.task:DjangoTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
