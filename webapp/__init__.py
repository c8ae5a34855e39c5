"""A web page and a JSON API over a trained toxicity classifier (see webapp/README.md)."""
