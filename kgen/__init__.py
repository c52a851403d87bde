"""kgen: deep-learning kernels generated for web browsers and autotuned in them."""

__version__ = "0.1.0"
