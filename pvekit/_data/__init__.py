"""Data files shipped with pvekit (the compact API schema)."""
