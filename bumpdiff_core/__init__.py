"""bumpdiff: an executable companion to Liang, Liu & Fiete (2024), diffusion models learning 2D bumps."""
from bumpdiff_core.config import PROFILES, ConfigError, RunConfig, profile_config  # noqa: F401

__version__ = "0.1.0"
