"""The stand-in's ``prefect.blocks``: only ``prefect.blocks.system`` (``Secret``, ``String``, ``JSON``)."""
