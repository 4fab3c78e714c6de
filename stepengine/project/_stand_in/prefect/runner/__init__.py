"""The stand-in's ``prefect.runner``: only ``prefect.runner.storage`` (code locations for ``from_source``)."""
