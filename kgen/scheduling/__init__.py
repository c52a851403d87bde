"""How ops are computed: knob spaces, templates, and lowering to the loop-nest IR."""
