"""Connected apps: the clients that hold access to a user's account, and taking it back (issue 16)."""
