"""nieuwsbrief: compose and send an e-mail newsletter from Markdown articles and an agenda."""

__version__ = "0.1.0"
