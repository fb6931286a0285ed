"""Data: readers for the real dataset layouts, the synthetic pedestrian generator, transforms, samplers."""
