"""PLIP pre-training: the three pretext objectives (IVLC, TIC, IAP), the CLIP baseline objective,
identity-aware sampling and the (distributed, resumable) trainer."""
