"""Everything that touches files: FITS cubes and tables (cube), safe writes (atomic), input lists (inputs),
catalogues (catalog), provenance and file hashes (provenance), grids and crops (regrid), writer processes (writers).

Nothing here imports torch; ``import galgen.io`` itself imports nothing.
"""
