"""Who and where an article names: the watchlist, the variant matcher, NER, GeoNames."""
