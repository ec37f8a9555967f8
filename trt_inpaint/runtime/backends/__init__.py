"""One runner per backend, all behind the contract in ``base.py``. Heavy modules are imported lazily."""
