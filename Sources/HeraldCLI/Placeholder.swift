// The admin commands.
