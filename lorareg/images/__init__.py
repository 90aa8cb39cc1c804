"""Attribution written into generated images (PNG text chunks, C2PA) and read back; no torch here."""
