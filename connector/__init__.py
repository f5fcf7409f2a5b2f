"""A declarative connector engine: YAML endpoint templates run as Singer taps and targets."""

__version__ = "0.1.0"
