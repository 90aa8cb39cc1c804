"""JSON routes under ``/api/v1``: adapters and versions, blobs, takedowns."""
