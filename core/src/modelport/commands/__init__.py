"""Commands built on the engine: bench, debug, optimize, zoo and the listings and views they show."""
