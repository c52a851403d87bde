"""Scheduling templates, one per op family × backend group; each declares a space and lowers any config. Which
backend uses which is said in ``kgen.backends``."""
