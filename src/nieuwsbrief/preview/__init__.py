"""The browser preview: the issue exactly as recipients get it, re-rendered on every save."""
