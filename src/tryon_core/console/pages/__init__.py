"""The console's pages, one module each; every module lists its handlers in ``ROUTES``."""
