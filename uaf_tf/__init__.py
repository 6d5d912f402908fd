"""uaf-tf: User-specific Adaptive Fine-tuning (UAF, TKDE 2021), Keras 3."""

__version__ = "0.1.0"
