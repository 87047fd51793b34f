"""Patient handouts on opioid use disorder treatment, rendered to accessible PDFs."""

__version__ = "0.1.0"
