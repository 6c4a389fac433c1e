"""Worker-only ML code for guards, laid out like TRL: ``config`` (a dataclass with help strings),
``data`` (examples, splits, the collator), ``losses`` (pure tensor functions), ``modeling`` (the
encoder + heads, save / load / predict), ``calibrate`` (temperature, thresholds), ``train``
(``main(cfg, ...)``, both recipes) and ``evaluate`` (metrics). ``config``, ``data``, ``calibrate``
and ``evaluate`` import no torch at module level; ``losses``, ``modeling`` and ``train`` do and
are imported only inside worker entry points (tasks, management commands, the jury backend)."""
