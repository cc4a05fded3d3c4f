"""Files shipped with irc: sample.png (`irc sample`), its source and licence in SOURCE.md."""
