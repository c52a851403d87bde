"""Real Chromium: finding it, serving pages to it on 127.0.0.1, and measuring kernels in it."""
