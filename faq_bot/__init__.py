"""faq-bot: answers questions about the Deep Learning 101 portal with cited links to its pages."""

__version__ = "0.1.0"
