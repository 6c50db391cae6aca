"""archive-sim: static "Liknande" (similar items) sites for image archives."""

__version__ = "0.1.0"
