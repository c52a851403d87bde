"""Model descriptors: a graph joined with tuning records and codegen, written as a folder a page loads."""
