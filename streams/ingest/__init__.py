"""From a feed to an article's clean text: feeds, safe fetching, robots.txt, cleaning, language."""
