"""Code shared by the Sluice job images (ingest, transform, aggregate).

Every image copies this package next to its own job package, so jobs import it as the
top-level `jobkit`, both in the container (/app) and when the local cloud runs the image's
Docker context as a host process.
"""
