"""The ``serve --demo`` catalogue (``catalogue``) and generated sample adapters (``samples``)."""
