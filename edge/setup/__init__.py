"""The technician's setup page (``clinic-edge setup``): the live picture, the client region drawn on it,
the checks with their verdict, the room profile written from the page."""
