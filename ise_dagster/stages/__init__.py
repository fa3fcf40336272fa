"""The ISE stages as plain functions over typed frames; the Dagster assets wrap them."""
