"""Evaluation: task specs, feature cache, protocols (zero-shot, linear probe, fine-tune), the runner, results."""
