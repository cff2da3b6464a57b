"""``ftstab report``: one self-contained HTML page (plus its copied images) of a sweep's verdicts,
bounds, corollaries, stabiliser tables, figures, datasets and provenance; no network, opens from disk."""
