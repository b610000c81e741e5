"""The framework-neutral training core: one trainer loop for both backends (``trainer.py``), the adapter interface
each backend implements (``backend.py``), run folders, options, validation and the run entry point.

No module here imports paddle or torch; ``paddle_impl/engine/backend.py`` and ``torch_impl/engine/backend.py`` are the
adapters, and each backend's ``engine/trainer.py`` binds one to the core.
"""
