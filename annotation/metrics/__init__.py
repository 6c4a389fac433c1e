"""Agreement and discretion metrics: pure functions on literal inputs (numpy, scipy, krippendorff).

Nothing here touches the database or Django; selectors gather ratings into the shapes documented
in :mod:`annotation.metrics.agreement` (a long table of ``(rater, item, value)`` rows) and
:mod:`annotation.metrics.discretion` (a rows × principles array of p_i and one preference vector per
annotator) and call these functions. The web process may import this package (no torch, no
scikit-learn).
"""
