"""SimCLR for scdd: an example plugin package (pretrainer ``simclr`` and command ``scdd simclr-info``)."""

__version__ = "0.1.0"
