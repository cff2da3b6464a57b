"""The real evaluation path (``ftstab real``, optional ``[real]`` extra): all-MiniLM-L6-v2 on few-shot
BBC News and a small CNN that ftstab pre-trains on scikit-learn's digits, head tuning and full
fine-tuning with every stabiliser, written to the same results schema as the synthetic sweep.

Importing this package needs only the core dependencies; ``transformers`` and the data packages are
imported when a task needs them (``verify.real.extra.require``). See docs/real.md.
"""
