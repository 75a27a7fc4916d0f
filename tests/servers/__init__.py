"""Private test servers: each fixture starts its own instance on a free 127.0.0.1 port."""
