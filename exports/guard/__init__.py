"""Guard models: taxonomy-tagged safety classifiers trained from the platform's own labels.

Django side (web + worker): ``models``, ``services``, ``selectors``, ``tasks``, ``sources`` (data
from files, ``guard-aegis`` export folders and a project's consensus) and ``manifest`` (guard.json).
Worker side only: ``exports.guard.ml`` (config / data / losses / modeling / train / evaluate); it
imports torch, and nothing the web process imports may import it at module level.
"""
