// The HTTP client.
