"""Work the redeemer does on its own clock: freeing expired tokens' seats, retention."""
