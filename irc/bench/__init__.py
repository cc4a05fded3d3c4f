"""`irc bench`: storage table, rate-distortion curves and BD-rates on an image set."""
