"""Data files shipped with fosrd: the default model bundle."""
