"""Synthetic feedback edits (SYNFAC-EDIT, REFERENCE §3): an editor model rewrites responses toward
(improve) or away from (corrupt) the guidelines; humans review the edits in the workbench."""
