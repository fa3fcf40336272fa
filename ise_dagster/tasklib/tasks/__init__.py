"""Task recipes, one module per domain, each exporting `RECIPES`."""
