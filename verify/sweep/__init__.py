"""Many tasks: build them from a grid, run them locally or on Dask, persist them resumably."""
