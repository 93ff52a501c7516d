"""The browser screens (``/ui``): server-rendered pages made from the service's own API."""
