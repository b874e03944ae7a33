"""Pure domain functions: no database, no Django; the services and exports build on them."""
