"""Services behind `Auth`: each owns one flow and talks to the store and providers."""
